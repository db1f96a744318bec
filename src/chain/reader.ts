import {
  type Address,
  BaseError,
  type Hex,
  HttpRequestError,
  numberToHex,
  type PublicClient,
  RpcRequestError,
  TimeoutError,
} from 'viem'
import { readAgreed } from './rpc.ts'
import type { ChainLog, LogFilter, NativeTransfer } from './types.ts'

// What the scanner reads from a network, every answer agreed by all of its RPC endpoints. Raw
// JSON-RPC requests rather than viem's actions: the scanner needs the node's fields as they are
// (hashes, indexes), and comparing raw answers across endpoints is exact.

export interface BlockHeader {
  number: bigint
  hash: Hex
  parentHash: Hex
}

interface RpcLog {
  blockNumber: Hex
  blockHash: Hex
  transactionHash: Hex
  logIndex: Hex
  address: Address
  topics: Hex[]
  data: Hex
}

interface RpcBlock {
  number: Hex
  hash: Hex
  parentHash: Hex
  transactions: Array<{ hash: Hex; from: Address; to: Address | null; value: Hex }>
}

export interface ChainReader {
  /** The lowest head among the endpoints: a block is only confirmed once every endpoint has it. */
  head(): Promise<bigint>
  /** The lowest `finalized` block among the endpoints. */
  finalized(): Promise<bigint>
  /** The canonical block at `number`, or null when the chain is not that long (any more). */
  header(number: bigint): Promise<BlockHeader | null>
  /** Logs for `filters` in [from, to]; `split` says a range had to be cut to be served. */
  logs(filters: LogFilter[], from: bigint, to: bigint): Promise<{ logs: ChainLog[]; split: boolean }>
  nativeTransfers(to: Address[], from: bigint, toBlock: bigint): Promise<NativeTransfer[]>
}

export function createChainReader(clients: readonly PublicClient[]): ChainReader {
  const agreed = <T>(method: string, params: unknown[]) =>
    readAgreed(clients, (client) => client.request({ method, params } as never) as Promise<T>)

  const minOver = async (read: (client: PublicClient) => Promise<bigint>) => {
    const numbers = await Promise.all(clients.map(read))
    let min = numbers[0]!
    for (const n of numbers) if (n < min) min = n
    return min
  }

  const header = async (number: bigint): Promise<BlockHeader | null> => {
    if (number < 0n) return null
    const block = await agreed<RpcBlock | null>('eth_getBlockByNumber', [numberToHex(number), false])
    return block ? { number: BigInt(block.number), hash: block.hash, parentHash: block.parentHash } : null
  }

  const logs = async (filters: LogFilter[], from: bigint, to: bigint) => {
    let split = false
    // Providers cap the range (or result size) of eth_getLogs and say so with an error: halve the
    // range until it is served. A single block that still fails is a real failure.
    const fetchRange = async (filter: LogFilter, a: bigint, b: bigint): Promise<RpcLog[]> => {
      try {
        return await agreed<RpcLog[]>('eth_getLogs', [
          {
            fromBlock: numberToHex(a),
            toBlock: numberToHex(b),
            address: filter.address,
            topics: filter.topics,
          },
        ])
      } catch (error) {
        if (a === b || !isRangeError(error)) throw error
        split = true
        const mid = a + (b - a) / 2n
        return [...(await fetchRange(filter, a, mid)), ...(await fetchRange(filter, mid + 1n, b))]
      }
    }
    const seen = new Set<string>()
    const out: ChainLog[] = []
    for (const filter of filters) {
      if (filter.address.length === 0) continue
      for (const log of await fetchRange(filter, from, to)) {
        // Two filters may match the same log: deliver it once.
        const key = `${log.blockHash}:${log.logIndex}`
        if (seen.has(key)) continue
        seen.add(key)
        out.push({
          blockNumber: BigInt(log.blockNumber),
          blockHash: log.blockHash,
          transactionHash: log.transactionHash,
          logIndex: Number(log.logIndex),
          address: log.address,
          topics: log.topics,
          data: log.data,
        })
      }
    }
    out.sort((x, y) =>
      x.blockNumber === y.blockNumber ? x.logIndex - y.logIndex : x.blockNumber < y.blockNumber ? -1 : 1,
    )
    return { logs: out, split }
  }

  const nativeTransfers = async (watched: Address[], from: bigint, to: bigint): Promise<NativeTransfer[]> => {
    const targets = new Set(watched.map((a) => a.toLowerCase()))
    const numbers: bigint[] = []
    for (let n = from; n <= to; n++) numbers.push(n)
    // Issued together, these go out as JSON-RPC batches (see createRpcClients).
    const blocks = await Promise.all(
      numbers.map((n) => agreed<RpcBlock | null>('eth_getBlockByNumber', [numberToHex(n), true])),
    )
    const candidates: Array<{ block: RpcBlock; tx: RpcBlock['transactions'][number] }> = []
    for (const block of blocks) {
      if (!block) throw new Error('a confirmed block is missing from the node')
      for (const tx of block.transactions) {
        if (tx.to && targets.has(tx.to.toLowerCase()) && BigInt(tx.value) > 0n) candidates.push({ block, tx })
      }
    }
    const receipts = await Promise.all(
      candidates.map(({ tx }) =>
        agreed<{ status: Hex; blockHash: Hex } | null>('eth_getTransactionReceipt', [tx.hash]),
      ),
    )
    const out: NativeTransfer[] = []
    candidates.forEach(({ block, tx }, i) => {
      const receipt = receipts[i]
      // A reverted call moved no value; a receipt from another block means the block changed under us.
      if (receipt?.status !== '0x1' || receipt.blockHash !== block.hash) return
      out.push({
        blockNumber: BigInt(block.number),
        blockHash: block.hash,
        transactionHash: tx.hash,
        from: tx.from,
        to: tx.to as Address,
        value: BigInt(tx.value),
      })
    })
    return out
  }

  return {
    head: () => minOver((client) => client.getBlockNumber({ cacheTime: 0 })),
    finalized: () =>
      minOver(async (client) => (await client.getBlock({ blockTag: 'finalized' })).number ?? 0n),
    header,
    logs,
    nativeTransfers,
  }
}

/**
 * Whether an eth_getLogs failure may go away with a smaller range: the node answered with an
 * error (range or result limits), timed out, or refused the request body. A node that cannot be
 * reached is not: that is retried later as a whole.
 */
export function isRangeError(error: unknown): boolean {
  if (!(error instanceof BaseError)) return false
  return Boolean(
    error.walk(
      (e) =>
        e instanceof RpcRequestError ||
        e instanceof TimeoutError ||
        (e instanceof HttpRequestError && (e.status === 400 || e.status === 413)),
    ),
  )
}
