import { and, desc, eq, gt, lt, lte, sql } from 'drizzle-orm'
import type { Hex } from 'viem'
import type { Db } from '../db/client.ts'
import { chainBlocks, chainCursors } from '../db/schema/index.ts'
import type { BlockHeader } from './reader.ts'
import type { Tx } from './types.ts'

// The durable side of a scanner: its cursor row and the recent positions kept for walking back
// after a reorg. Every move of the cursor is a compare-and-set under `SELECT … FOR UPDATE`, so
// when two processes scan the same (chain, consumer) on one PostgreSQL, only the one that still
// sees the position it read from applies a range; the other's work is dropped, never doubled.

export interface Cursor {
  number: bigint
  hash: Hex | null
}

export interface CursorStore {
  read(): Promise<Cursor | undefined>
  /** Creates the cursor at `at` unless it exists; returns the cursor as stored. */
  init(at: Cursor, parentHash: Hex | null): Promise<Cursor>
  /**
   * Runs `fn` and moves the cursor from `expected` to `next` in one transaction, unless the cursor
   * is no longer at `expected` (then nothing happens and it returns false).
   */
  advance(expected: Cursor, next: BlockHeader, fn: (tx: Tx) => Promise<void>): Promise<boolean>
  /** Like advance, but back to `ancestor`, forgetting the positions after it. */
  rewind(expected: Cursor, ancestor: Cursor, fn: (tx: Tx) => Promise<void>): Promise<boolean>
  /** Kept positions at or below `atOrBelow`, newest first. */
  recent(atOrBelow: bigint): Promise<Cursor[]>
}

export function createCursorStore(db: Db, chainId: number, consumer: string, keep = 256): CursorStore {
  const cursorKey = and(eq(chainCursors.chainId, chainId), eq(chainCursors.consumer, consumer))
  const blocksKey = and(eq(chainBlocks.chainId, chainId), eq(chainBlocks.consumer, consumer))
  const toCursor = (row: { blockNumber: bigint; blockHash: string | null }): Cursor => ({
    number: row.blockNumber,
    hash: row.blockHash as Hex | null,
  })

  /** Locks the cursor row and says whether it is still where the caller read it. */
  const lockedAt = async (tx: Tx, expected: Cursor) => {
    const [row] = await tx.select().from(chainCursors).where(cursorKey).for('update')
    return row !== undefined && row.blockNumber === expected.number && row.blockHash === expected.hash
  }

  const remember = (tx: Tx, block: { number: bigint; hash: Hex; parentHash: Hex | null }) =>
    tx
      .insert(chainBlocks)
      .values({
        chainId,
        consumer,
        blockNumber: block.number,
        blockHash: block.hash,
        parentHash: block.parentHash,
      })
      .onConflictDoUpdate({
        target: [chainBlocks.chainId, chainBlocks.consumer, chainBlocks.blockNumber],
        set: { blockHash: block.hash, parentHash: block.parentHash },
      })

  return {
    async read() {
      const [row] = await db.select().from(chainCursors).where(cursorKey)
      return row && toCursor(row)
    },

    async init(at, parentHash) {
      await db.transaction(async (tx) => {
        const inserted = await tx
          .insert(chainCursors)
          .values({ chainId, consumer, blockNumber: at.number, blockHash: at.hash })
          .onConflictDoNothing()
          .returning()
        if (inserted.length && at.hash) await remember(tx, { number: at.number, hash: at.hash, parentHash })
      })
      const [row] = await db.select().from(chainCursors).where(cursorKey)
      return toCursor(row!)
    },

    advance(expected, next, fn) {
      return db.transaction(async (tx) => {
        if (!(await lockedAt(tx, expected))) return false
        await fn(tx)
        await tx
          .update(chainCursors)
          .set({ blockNumber: next.number, blockHash: next.hash, updatedAt: new Date() })
          .where(cursorKey)
        await remember(tx, next)
        // Keep the newest `keep` positions: deeper reorgs than that are not recoverable anyway.
        await tx.delete(chainBlocks).where(
          and(
            blocksKey,
            lt(
              chainBlocks.blockNumber,
              sql`(select ${chainBlocks.blockNumber} from ${chainBlocks} where ${blocksKey}
                   order by ${chainBlocks.blockNumber} desc offset ${keep - 1} limit 1)`,
            ),
          ),
        )
        return true
      })
    },

    rewind(expected, ancestor, fn) {
      return db.transaction(async (tx) => {
        if (!(await lockedAt(tx, expected))) return false
        await fn(tx)
        await tx
          .update(chainCursors)
          .set({ blockNumber: ancestor.number, blockHash: ancestor.hash, updatedAt: new Date() })
          .where(cursorKey)
        await tx.delete(chainBlocks).where(and(blocksKey, gt(chainBlocks.blockNumber, ancestor.number)))
        return true
      })
    },

    async recent(atOrBelow) {
      const rows = await db
        .select()
        .from(chainBlocks)
        .where(and(blocksKey, lte(chainBlocks.blockNumber, atOrBelow)))
        .orderBy(desc(chainBlocks.blockNumber))
      return rows.map(toCursor)
    },
  }
}
