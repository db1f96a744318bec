import { bigint, integer, pgTable, primaryKey, text } from 'drizzle-orm/pg-core'
import { at } from './columns.ts'

/**
 * How far each chain consumer (payments, nft, …) has applied one network's confirmed blocks. The
 * row moves in the same transaction as the consumer's own writes, so a block range is applied
 * exactly once. `block_hash` is the hash the cursor block had when it was applied; it is null
 * only while the cursor sits before genesis or before a start block not mined yet.
 */
export const chainCursors = pgTable(
  'chain_cursors',
  {
    chainId: integer('chain_id').notNull(),
    consumer: text('consumer').notNull(),
    blockNumber: bigint('block_number', { mode: 'bigint' }).notNull(),
    blockHash: text('block_hash'),
    updatedAt: at('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.chainId, t.consumer] })],
)

/**
 * Recently applied cursor positions with their hashes (the newest ~256 per cursor). After a reorg
 * deeper than the confirmation depth, the scanner walks back through them to the newest one still
 * on the canonical chain: everything up to it is still valid, so that is where it rewinds to.
 */
export const chainBlocks = pgTable(
  'chain_blocks',
  {
    chainId: integer('chain_id').notNull(),
    consumer: text('consumer').notNull(),
    blockNumber: bigint('block_number', { mode: 'bigint' }).notNull(),
    blockHash: text('block_hash').notNull(),
    parentHash: text('parent_hash'),
  },
  (t) => [primaryKey({ columns: [t.chainId, t.consumer, t.blockNumber] })],
)
