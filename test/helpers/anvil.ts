import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import {
  type Account,
  type Address,
  type Chain,
  createPublicClient,
  createWalletClient,
  defineChain,
  type Hex,
  http,
  type PublicClient,
  type Transport,
  toHex,
  type WalletClient,
} from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import { freePort } from '../../scripts/postgres.ts'
import { waitFor } from './wait.ts'

// Real anvil nodes for chain tests, one process per call on its own loopback port, so several
// chains (or two diverging copies of one chain) run side by side.

const ANVIL_BIN = fileURLToPath(
  new URL('../../node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil', import.meta.url),
)

/** anvil's well-known development mnemonic; its accounts are funded with 10,000 ETH each. */
export const ANVIL_MNEMONIC = 'test test test test test test test test test test test junk'

export interface Anvil {
  rpcUrl: string
  chainId: number
  pid: number
  chain: Chain
  stop(): Promise<void>
}

export interface AnvilOptions {
  chainId: number
  /** Seconds between blocks; without it every transaction is mined at once (automine). */
  blockTime?: number
  /** Extra command-line arguments, e.g. ['--accounts', '3']. */
  args?: string[]
}

export async function startAnvil(options: AnvilOptions): Promise<Anvil> {
  // freePort closes its probe before anvil binds, so another process may take the port in
  // between: try again on a fresh port when anvil exits early.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options, await freePort())
    } catch (error) {
      if (attempt >= 3) throw error
    }
  }
}

async function startOnce(options: AnvilOptions, port: number): Promise<Anvil> {
  const args = [
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--chain-id',
    String(options.chainId),
    '--silent',
  ]
  if (options.blockTime !== undefined) args.push('--block-time', String(options.blockTime))
  args.push(...(options.args ?? []))
  const child = spawn(ANVIL_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  live.add(child)
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const rpcUrl = `http://127.0.0.1:${port}`
  try {
    await waitFor(
      `anvil on port ${port}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`anvil exited with ${child.exitCode}: ${stderr.trim()}`)
        const id = await rpc<Hex>(rpcUrl, 'eth_chainId', [])
        return Number(id) === options.chainId
      },
      10_000,
      20,
    )
  } catch (error) {
    await kill(child)
    throw error
  }
  const chain = defineChain({
    id: options.chainId,
    name: `anvil-${options.chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  })
  return { rpcUrl, chainId: options.chainId, pid: child.pid!, chain, stop: () => kill(child) }
}

// A test process that dies or forgets stop() must not leave its nodes running.
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

async function kill(child: ChildProcess): Promise<void> {
  live.delete(child)
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  process.kill(child.pid!, 'SIGKILL')
  await exited
}

let nextId = 1

/** One raw JSON-RPC request; throws the node's error message. */
export async function rpc<T = unknown>(url: string, method: string, params: unknown[]): Promise<T> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }),
  })
  const body = (await response.json()) as { result?: T; error?: { message: string } }
  if (body.error) throw new Error(`${method}: ${body.error.message}`)
  return body.result as T
}

const accountCache = new Map<number, Account>()

/** The dev mnemonic's account at `index` (0–9 are funded). */
export function anvilAccount(index: number): Account {
  let account = accountCache.get(index)
  if (!account) {
    account = mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: index })
    accountCache.set(index, account)
  }
  return account
}

/** The dev mnemonic's private key at `index`, for a CLI or a sign-in that needs the key itself. */
export function anvilPrivateKey(index: number): Hex {
  return toHex(mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: index }).getHdKey().privateKey!)
}

export function publicClientFor(anvil: Anvil): PublicClient<Transport, Chain> {
  return createPublicClient({ chain: anvil.chain, transport: http(anvil.rpcUrl, { retryCount: 0 }) })
}

export function walletFor(anvil: Anvil, index = 0): WalletClient<Transport, Chain, Account> {
  return createWalletClient({
    account: anvilAccount(index),
    chain: anvil.chain,
    transport: http(anvil.rpcUrl, { retryCount: 0 }),
  })
}

/** Mines `n` empty blocks at once. */
export async function mine(anvil: Anvil, n = 1): Promise<void> {
  await rpc(anvil.rpcUrl, 'anvil_mine', [`0x${n.toString(16)}`])
}

export async function blockNumber(anvil: Anvil): Promise<bigint> {
  return BigInt(await rpc<Hex>(anvil.rpcUrl, 'eth_blockNumber', []))
}

export async function snapshot(anvil: Anvil): Promise<Hex> {
  return rpc<Hex>(anvil.rpcUrl, 'evm_snapshot', [])
}

export async function revert(anvil: Anvil, id: Hex): Promise<void> {
  const ok = await rpc<boolean>(anvil.rpcUrl, 'evm_revert', [id])
  if (!ok) throw new Error(`evm_revert ${id} failed`)
}

export interface ReorgTx {
  /** A signed raw transaction, or a request anvil signs for an unlocked account. */
  tx: Hex | { from: Address; to?: Address; data?: Hex; value?: Hex; gas?: Hex; nonce?: Hex }
  /** Which of the replacement blocks gets it: 0 is the first block after the common ancestor. */
  blockOffset: number
}

/**
 * Replaces the newest `depth` blocks with `depth` new ones holding only `txs`, as a chain
 * reorganisation would: the old blocks' transactions and logs are gone, the head number stays.
 */
export async function reorg(anvil: Anvil, depth: number, txs: ReorgTx[] = []): Promise<void> {
  await rpc(anvil.rpcUrl, 'anvil_reorg', [depth, txs.map(({ tx, blockOffset }) => [tx, blockOffset])])
}
