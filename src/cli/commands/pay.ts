import { type Command, InvalidArgumentError } from 'commander'
import type { Hex } from 'viem'
import { BerthError } from '../../domain/errors.ts'
import { parseUsdE18 } from '../../payments/money.ts'
import type { OrderView } from '../../payments/orders.ts'
import { exitCodes } from '../exit-codes.ts'
import { formatUsd } from '../output.ts'
import { readKey } from './auth.ts'
import type { Action, CommandContext } from './context.ts'
import { parseCount } from './list.ts'
import { resolveDeployment } from './watch.ts'

// `berth pay` quotes a payment; with --send it also makes the transfer from the user's wallet and
// follows it until berth credits it, showing the confirmations as they arrive. `berth balance`
// shows the credits (and with --ledger, where they came from and went).

interface Networks {
  items: Array<{
    chainId: number
    name: string
    confirmations: number | 'finalized'
    tokens: Array<{ symbol: string; address: string; decimals: number }>
  }>
}

interface LedgerEntry {
  at: string
  cause: string
  availableMicroUsd: string
  memo: string
}

interface PayOptions {
  chain: number
  token: string
  usd?: string
  deployment?: string
  hours?: number
  send?: boolean
  rpc?: string
  keyFile?: string
  timeout: number
}

export function registerPay(program: Command, action: Action): void {
  program
    .command('pay')
    .description('quote a payment; with --send, pay it from your wallet and wait until it is credited')
    .requiredOption('--chain <id>', 'chain id of an accepted network (see GET /v1/networks)', parseCount)
    .requiredOption('--token <symbol>', 'token to pay with, e.g. USDC or ETH')
    .option('--usd <amount>', 'credits to buy, in US dollars, e.g. 5.00')
    .option('--deployment <deployment>', 'pay for this deployment (id, id prefix or name) for --hours')
    .option('--hours <n>', 'hours of the deployment to pay for', parseCount)
    .option('--send', 'send the transfer with your wallet key and wait for the credit')
    .option('--rpc <url>', 'RPC endpoint of the chain to send through (with --send)')
    .option('--key-file <path>', 'file holding the private key (default: $BERTH_PRIVATE_KEY)')
    .option('--timeout <seconds>', 'give up waiting after this long', parseCount, 900)
    .action(action((ctx, opts: PayOptions) => pay(ctx, opts)))

  program
    .command('balance')
    .description('show your credits; --ledger lists the entries behind them')
    .option('--ledger', 'list ledger entries, newest first')
    .action(
      action(async (ctx, opts: { ledger?: boolean }) => {
        const balance = await ctx
          .client()
          .get<{ availableMicroUsd: string; heldMicroUsd: string }>('/v1/balance')
        if (!opts.ledger) {
          ctx.print(
            balance,
            () =>
              `available ${formatUsd(balance.availableMicroUsd)}  held ${formatUsd(balance.heldMicroUsd)}\n`,
          )
          return exitCodes.ok
        }
        const ledger = await ctx.client().get<{ items: LedgerEntry[] }>('/v1/ledger')
        ctx.print({ ...balance, ...ledger }, () =>
          [
            `available ${formatUsd(balance.availableMicroUsd)}  held ${formatUsd(balance.heldMicroUsd)}`,
            ...ledger.items.map(
              (e) =>
                `${e.at}  ${e.cause.padEnd(8)} ${formatUsd(e.availableMicroUsd).padStart(14)}  ${e.memo}`,
            ),
            '',
          ].join('\n'),
        )
        return exitCodes.ok
      }),
    )
}

async function pay(ctx: CommandContext, opts: PayOptions): Promise<number> {
  if ((opts.usd === undefined) === (opts.deployment === undefined)) {
    throw new BerthError(
      'invalid_input',
      'say what to pay for: --usd <amount>, or --deployment <ref> --hours <n>',
    )
  }
  if (opts.deployment !== undefined && !opts.hours)
    throw new BerthError('invalid_input', '--deployment needs --hours <n>')
  if (opts.send && !opts.rpc)
    throw new BerthError('invalid_input', '--send needs --rpc <url> to reach the chain')
  const client = ctx.client()
  const body: Record<string, unknown> = { chainId: opts.chain, token: opts.token }
  if (opts.usd !== undefined) body.creditsMicroUsd = usdToMicro(opts.usd).toString()
  else {
    body.deploymentId = (await resolveDeployment(client, opts.deployment!)).id
    body.hours = opts.hours
  }
  const order = await client.post<OrderView>('/v1/quotes', body)
  if (!opts.send) {
    ctx.print(order, () => describeOrder(order))
    return exitCodes.ok
  }
  const key = readKey(ctx, opts.keyFile)
  const networks = await client.get<Networks>('/v1/networks')
  const network = networks.items.find((n) => n.chainId === order.chainId)!
  const token = network.tokens.find((t) => t.symbol === order.token)!
  const progress = (line: string) => {
    if (!ctx.json) ctx.io.stderr.write(`${line}\n`)
  }
  progress(describeOrder(order).trimEnd())

  const { createWalletClient, createPublicClient, http, defineChain, erc20Abi } = await import('viem')
  const { privateKeyToAccount } = await import('viem/accounts')
  const chain = defineChain({
    id: order.chainId,
    name: network.name,
    nativeCurrency: { name: 'native', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [opts.rpc!] } },
  })
  const transport = http(opts.rpc!)
  const reader = createPublicClient({ chain, transport })
  const remoteChain = await reader.getChainId()
  if (remoteChain !== order.chainId) {
    throw new BerthError(
      'invalid_input',
      `--rpc ${opts.rpc} serves chain ${remoteChain}, the order is for chain ${order.chainId}`,
    )
  }
  const wallet = createWalletClient({ chain, transport, account: privateKeyToAccount(key) })
  const amount = BigInt(order.amount)
  const txHash: Hex =
    token.address === 'native'
      ? await wallet.sendTransaction({ to: order.payTo as Hex, value: amount })
      : await wallet.writeContract({
          address: token.address as Hex,
          abi: erc20Abi,
          functionName: 'transfer',
          args: [order.payTo as Hex, amount],
        })
  progress(`sent ${txHash}`)
  const receipt = await reader.waitForTransactionReceipt({ hash: txHash, pollingInterval: 500 })
  if (receipt.status !== 'success')
    throw new BerthError('invalid_input', `transaction ${txHash} reverted: nothing was paid`)
  progress(`mined in block ${receipt.blockNumber}`)

  const deadline = ctx.io.now().getTime() + opts.timeout * 1000
  let shown = -1n
  for (;;) {
    const depth = (await reader.getBlockNumber({ cacheTime: 0 })) - receipt.blockNumber
    if (depth !== shown) {
      shown = depth
      progress(`confirmations ${depth}/${network.confirmations}`)
    }
    const current = await client.post<OrderView>(`/v1/orders/${order.orderId}/payments`, { txHash })
    const payment = current.payments.find((p) => p.txHash === txHash)
    if (payment?.status === 'credited') {
      ctx.print(
        current,
        () =>
          `credited ${formatUsd(payment.creditedMicroUsd)}; order ${current.orderId} is ${current.status}\n`,
      )
      return exitCodes.ok
    }
    if (ctx.io.now().getTime() > deadline) {
      throw new BerthError(
        'provider_unavailable',
        `not credited after ${opts.timeout}s; berth keeps watching ${txHash}`,
      )
    }
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
}

function usdToMicro(text: string): bigint {
  let e18: bigint
  try {
    e18 = parseUsdE18(text.replace(/^\$/, ''))
  } catch {
    throw new InvalidArgumentError(`--usd ${text}: expected an amount like 5.00`)
  }
  const micro = e18 / 10n ** 12n
  if (micro <= 0n) throw new BerthError('invalid_input', `--usd ${text} is less than one micro-dollar`)
  return micro
}

function describeOrder(order: OrderView): string {
  return [
    `order ${order.orderId} (${order.status}): ${formatUsd(order.valueMicroUsd)} of credits`,
    `pay ${order.amount} base units of ${order.token} to ${order.payTo} on chain ${order.chainId}`,
    `before ${order.expiresAt} (1 ${order.token} = $${order.rate})`,
    '',
  ].join('\n')
}
