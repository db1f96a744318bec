import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import type { Hex } from 'viem'
import { appendAudit } from '../audit/audit-log.ts'
import { type PaymentNetwork, paymentNetworks } from '../config/payments-schema.ts'
import type { Config } from '../config/schema.ts'
import type { DeploymentStore } from '../control/deployment-store.ts'
import { type Database, queryRows } from '../db/client.ts'
import type { ChangeSource } from '../domain/actor.ts'
import { BerthError, conflict, invalidInput, notFound } from '../domain/errors.ts'
import { type CreditingDeps, type RecordOutcome, recordTransfer } from './crediting.ts'
import { formatE18, microUsdToToken } from './money.ts'
import type { PriceOracle, SourceReading } from './oracle.ts'
import { hourlyMicroUsd } from './pricing.ts'
import type { ChainAccess, Verification } from './verify.ts'

// Quotes (orders) and payments submitted by hash. An order fixes an amount of a token for some
// credits at the current rate, until it expires; paying it is verified on chain and credited by
// crediting.ts, which the watcher uses too.

export interface OrdersDeps {
  database: Database
  config: Pick<Config, 'payments' | 'pricing' | 'networks'>
  store: DeploymentStore
  oracle: PriceOracle
  chains: Map<number, ChainAccess>
  crediting: CreditingDeps
  now?: () => Date
}

export type QuoteInput =
  | { deploymentId: string; hours: number; chainId: number; token: string }
  | { creditsMicroUsd: bigint; chainId: number; token: string }

export interface OrderView {
  orderId: string
  status: 'init' | 'processing' | 'success' | 'fail' | 'expired'
  chainId: number
  token: string
  amount: string
  received: string
  /** What is still to be paid, in base units ("0" once paid). */
  shortfall: string
  payTo: string
  rate: string
  sources: SourceReading[]
  valueMicroUsd: string
  creditedMicroUsd: string
  deploymentId: string | null
  hours: number | null
  expiresAt: string
  createdAt: string
  payments: Array<{
    txHash: string
    logIndex: number
    amount: string
    status: string
    blockNumber: string | null
    creditedMicroUsd: string
  }>
}

interface OrderRow {
  id: string
  account_id: string
  deployment_id: string | null
  hours: number | null
  value_micro_usd: string
  chain_id: number
  token_symbol: string
  token_address: string
  amount: string
  pay_to: string
  rate_e18: string
  sources: SourceReading[]
  status: OrderView['status']
  received: string
  credited_micro_usd: string
  expires_at: Date | string
  created_at: Date | string
}

export function findToken(config: Pick<Config, 'networks'>, chainId: number, token: string) {
  const accepted = paymentNetworks(config.networks)
  const network = accepted.find((n) => n.chainId === chainId)
  if (!network) {
    const known = accepted.map((n) => `${n.chainId} (${n.name})`).join(', ') || 'none'
    throw invalidInput(`chain ${chainId} is not accepted for payments; accepted chains: ${known}`)
  }
  const wanted = token.toLowerCase()
  const found = network.tokens.find((t) => t.symbol.toLowerCase() === wanted || t.address === wanted)
  if (!found) {
    throw invalidInput(
      `token ${token} is not accepted on ${network.name}; accepted: ${network.tokens.map((t) => t.symbol).join(', ')}`,
    )
  }
  return { network, token: found }
}

export function createOrders(deps: OrdersDeps) {
  const { database } = deps
  const now = deps.now ?? (() => new Date())

  async function quote(accountId: string, input: QuoteInput, source: ChangeSource): Promise<OrderView> {
    const { network, token } = findToken(deps.config, input.chainId, input.token)
    let value: bigint
    let deploymentId: string | null = null
    let hours: number | null = null
    if ('deploymentId' in input) {
      const row = await deps.store.get(accountId, input.deploymentId)
      value = hourlyMicroUsd(row.spec, deps.config.pricing) * BigInt(input.hours)
      deploymentId = row.id
      hours = input.hours
    } else {
      value = input.creditsMicroUsd
    }
    if (value <= 0n) throw invalidInput('the order is worth nothing: ask for a positive amount')
    const price = await deps.oracle.price(network.chainId, token)
    const amount = microUsdToToken(value, token.decimals, price.rate)
    const id = randomUUID()
    const expiresAt = new Date(now().getTime() + deps.config.payments.quoteTtlSeconds * 1000)
    await database.db.transaction(async (tx) => {
      await tx.execute(
        sql`insert into orders (id, account_id, deployment_id, hours, value_micro_usd, chain_id, token_symbol, token_address,
                                decimals, amount, pay_to, rate_e18, sources, expires_at, created_at, updated_at)
            values (${id}, ${accountId}, ${deploymentId}, ${hours}, ${value.toString()}, ${network.chainId}, ${token.symbol},
                    ${token.address}, ${token.decimals}, ${amount.toString()}, ${network.treasury}, ${price.rate.toString()},
                    ${JSON.stringify(price.sources)}::jsonb, ${expiresAt}, ${now()}, ${now()})`,
      )
      const detail = {
        microUsd: value.toString(),
        chainId: network.chainId,
        token: token.symbol,
        amount: amount.toString(),
        deploymentId,
      }
      await appendAudit(tx, [
        { ownerId: accountId, source, action: 'order.create', target: `order:${id}`, detail },
      ])
    })
    return get(accountId, id)
  }

  async function get(accountId: string, id: string): Promise<OrderView> {
    await expireOrders(database, now(), id)
    const [order] = await queryRows<OrderRow>(
      database.db,
      sql`select * from orders where id = ${id} and account_id = ${accountId}`,
    )
    if (!order) throw notFound(`order ${id}`)
    const payments = await queryRows<{
      tx_hash: string
      log_index: number
      amount: string
      status: string
      block_number: string | null
      credited_micro_usd: string
    }>(
      database.db,
      sql`select tx_hash, log_index, amount, status, block_number::text, credited_micro_usd::text
            from chain_payments where order_id = ${id} order by created_at`,
    )
    return viewOf(order, payments)
  }

  /** Verifies a transaction the user says pays the order, and credits it once it is deep enough. */
  async function submitPayment(
    accountId: string,
    orderId: string,
    txHash: Hex,
    source: ChangeSource,
  ): Promise<OrderView & { payment: RecordOutcome['kind'] }> {
    const order = await get(accountId, orderId)
    const [account] = await queryRows<{ address: string | null }>(
      database.db,
      sql`select address from accounts where id = ${accountId}`,
    )
    if (!account?.address) throw invalidInput('only a wallet account can pay on chain')
    const { network, token } = findToken(deps.config, order.chainId, order.token)
    const access = deps.chains.get(network.chainId)
    if (!access) throw new BerthError('provider_unavailable', `chain ${network.chainId} has no RPC access`)
    const verification = await verifyTransaction(access, txHash).catch((error: unknown) => {
      throw chainUnavailable(network, error)
    })
    if (verification.kind === 'not_found') throw await notOnChain(network, txHash)
    if (verification.kind === 'reverted')
      throw invalidInput(`transaction ${txHash} reverted on ${network.name}: nothing was paid`)
    if (verification.phantom.length > 0 && verification.transfers.length === 0) {
      throw invalidInput(
        `transaction ${txHash} logs a ${verification.phantom[0]!.token.symbol} transfer to the treasury, but the treasury's balance did not grow by it`,
      )
    }
    const transfers = verification.transfers.filter((t) => t.token.address === token.address)
    if (transfers.length === 0) {
      const other = verification.transfers[0]
      if (other)
        throw invalidInput(
          `wrong token: transaction ${txHash} paid ${other.token.symbol}, the order asks for ${token.symbol}`,
        )
      throw invalidInput(`transaction ${txHash} sends no ${token.symbol} to the treasury ${network.treasury}`)
    }
    const foreign = transfers.find((t) => t.payer !== account.address)
    if (foreign) {
      throw invalidInput(
        `the payer ${foreign.payer} of transaction ${txHash} is not your wallet ${account.address}`,
      )
    }
    // A transaction pays one order: one that already paid another is refused, naming that order,
    // rather than answered as if this order had been paid.
    const [earlier] = await queryRows<{ order_id: string | null }>(
      database.db,
      sql`select order_id from chain_payments
           where chain_id = ${network.chainId} and tx_hash = ${txHash.toLowerCase()}
             and (order_id is distinct from ${orderId}) and (order_id is not null or status = 'credited')
           limit 1`,
    )
    if (earlier) {
      throw conflict(
        earlier.order_id
          ? `transaction ${txHash} already paid order ${earlier.order_id}`
          : `transaction ${txHash} was already credited to your balance, without an order`,
        { paidOrder: earlier.order_id },
      )
    }
    let outcome: RecordOutcome['kind'] = 'duplicate'
    for (const transfer of transfers) {
      const result = await recordTransfer(deps.crediting, transfer, {
        confirmed: verification.confirmed,
        orderId,
        via: source,
      })
      if (result.kind !== 'duplicate') outcome = result.kind
    }
    return { ...(await get(accountId, orderId)), payment: outcome }
  }

  /** A hash that is not on the order's chain: say where it is if it is on another accepted chain. */
  async function notOnChain(network: PaymentNetwork, txHash: Hex): Promise<BerthError> {
    for (const [chainId, other] of deps.chains) {
      if (chainId === network.chainId) continue
      const found = await verifyTransaction(other, txHash).catch(() => null)
      if (found && found.kind !== 'not_found') {
        return invalidInput(
          `wrong chain: transaction ${txHash} is on chain ${chainId} (${other.network.name}), the order is for chain ${network.chainId} (${network.name})`,
        )
      }
    }
    return notFound(`transaction ${txHash} on chain ${network.chainId} (${network.name})`)
  }

  return { quote, get, submitPayment }
}

export type Orders = ReturnType<typeof createOrders>

/** verify.ts brings viem along; it is loaded with the first payment submitted. */
async function verifyTransaction(access: ChainAccess, txHash: Hex): Promise<Verification> {
  const verify = await import('./verify.ts')
  return verify.verifyTransaction(access, txHash)
}

/** A chain read that failed or on which the RPCs disagree: try again later, nothing was decided. */
function chainUnavailable(network: PaymentNetwork, error: unknown): BerthError {
  // Disagreeing endpoints are told without their URLs, which may carry API keys.
  const disagree = (error as Error).name === 'RpcDisagreementError'
  if (error instanceof BerthError && !disagree) return error
  const why = disagree
    ? 'its RPC endpoints disagree about the transaction'
    : `its RPC did not answer (${(error as Error).message.split('\n')[0]})`
  return new BerthError(
    'provider_unavailable',
    `cannot verify on ${network.name} now: ${why}; submit again later`,
  )
}

/**
 * At its deadline an order nobody paid is `expired`, and one whose payment was seen but never
 * arrived (reorged away, or still unconfirmed) is `fail`. Neither is final for money: a payment
 * that confirms later is still credited, to the balance and to the order. Reading an order settles
 * just that one; the metering pass settles all of them.
 */
export async function expireOrders(database: Database, now: Date, orderId?: string): Promise<void> {
  await database.db.execute(
    sql`update orders
           set status = case status when 'init' then 'expired' else 'fail' end, updated_at = ${now}
         where expires_at < ${now} and (status = 'init' or (status = 'processing' and received = 0))
           ${orderId ? sql`and id = ${orderId}` : sql``}`,
  )
}

function viewOf(order: OrderRow, payments: Array<Record<string, unknown>>): OrderView {
  const amount = BigInt(order.amount)
  const received = BigInt(order.received)
  return {
    orderId: order.id,
    status: order.status,
    chainId: order.chain_id,
    token: order.token_symbol,
    amount: amount.toString(),
    received: received.toString(),
    shortfall: (received >= amount ? 0n : amount - received).toString(),
    payTo: order.pay_to,
    rate: formatE18(BigInt(order.rate_e18)),
    sources: order.sources,
    valueMicroUsd: BigInt(order.value_micro_usd).toString(),
    creditedMicroUsd: BigInt(order.credited_micro_usd).toString(),
    deploymentId: order.deployment_id,
    hours: order.hours,
    expiresAt: new Date(order.expires_at).toISOString(),
    createdAt: new Date(order.created_at).toISOString(),
    payments: payments.map((p) => ({
      txHash: String(p.tx_hash),
      logIndex: Number(p.log_index),
      amount: BigInt(String(p.amount)).toString(),
      status: String(p.status),
      blockNumber: p.block_number === null ? null : String(p.block_number),
      creditedMicroUsd: String(p.credited_micro_usd),
    })),
  }
}
