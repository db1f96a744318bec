import type { Address, Hex } from 'viem'
import type { Tx } from '../db/client.ts'

/**
 * The transaction a consumer writes in: the one that also moves its cursor, so its writes and the
 * cursor commit or roll back together. A drizzle transaction (use `tx.insert(…)`, `tx.execute(sql…)`),
 * the same type `db.transaction` hands out elsewhere in berth.
 */
export type { Tx }

/** Fields as the node returned them (hex strings usually lowercase: compare addresses case-insensitively). */
export interface ChainLog {
  blockNumber: bigint
  blockHash: Hex
  transactionHash: Hex
  logIndex: number
  address: Address
  topics: Hex[]
  data: Hex
}

/** A transaction sending value straight to a watched address, with a successful receipt. */
export interface NativeTransfer {
  blockNumber: bigint
  blockHash: Hex
  transactionHash: Hex
  from: Address
  to: Address
  value: bigint
}

export interface LogFilter {
  /** Contracts to watch; a filter with no address is ignored (it would match every contract). */
  address: Address[]
  /** eth_getLogs topics: per position one topic, any of several, or null for any. */
  topics: (Hex | Hex[] | null)[]
}

export interface ConfirmedBatch {
  from: bigint
  to: bigint
  /** Every matching log in [from, to], in block and log order, each once. */
  logs: ChainLog[]
  /** Direct value transfers to `nativeTo` in [from, to], in block and transaction order. */
  nativeTransfers: NativeTransfer[]
  /** The head this batch was confirmed against. */
  headBlock: bigint
}

export interface ChainConsumer {
  /** The cursor key, e.g. 'payments' or 'nft'. */
  readonly name: string
  /** What to fetch for the next range; asked every time, so the set can change (new orders, new collections). */
  filters(): { logs: LogFilter[]; nativeTo: Address[] }
  /** Confirmed data for blocks [from, to]. Runs in the transaction that advances the cursor, so it is applied exactly once. */
  onConfirmed(tx: Tx, batch: ConfirmedBatch): Promise<void>
  /** Blocks >= fromBlock that were already confirmed are no longer canonical (a reorg deeper than the depth). Same transaction as the cursor rewind. */
  onReorg(tx: Tx, fromBlock: bigint): Promise<void>
}
