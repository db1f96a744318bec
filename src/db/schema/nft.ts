import {
  bigint,
  bigserial,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core'
import { accounts } from './accounts.ts'
import { at } from './columns.ts'

/**
 * The last verified holder of a token, read at a confirmed block: a create or start within
 * `nft.ownershipCacheSeconds` of the check does not read the chain again. The NFT watcher deletes
 * a token's row as soon as a confirmed transfer of it is applied, so the cache never outlives a
 * transfer it has seen. `token_id` is text: a uint256 does not fit any integer column.
 */
export const nftOwnership = pgTable(
  'nft_ownership',
  {
    chainId: integer('chain_id').notNull(),
    contract: text('contract').notNull(),
    tokenId: text('token_id').notNull(),
    owner: text('owner').notNull(),
    blockNumber: bigint('block_number', { mode: 'bigint' }).notNull(),
    verifiedAt: at('verified_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.chainId, t.contract, t.tokenId] })],
)

/**
 * The in-app list: every event told to an owner, with its read mark (berth/notify fans them out).
 * Messages for an account that must outlive its access to what they are about, e.g. "your NFT was
 * transferred and the deployment went with it": the deployment's own events are no longer visible
 * to the old holder, this row is.
 */
export const notifications = pgTable(
  'notifications',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    accountId: uuid('account_id')
      .notNull()
      .references(() => accounts.id),
    type: text('type').notNull(),
    message: text('message').notNull(),
    deploymentId: uuid('deployment_id'),
    data: jsonb('data'),
    /** The outbox event it tells (`evt_…`); null for rows written before the outbox. */
    eventId: text('event_id'),
    readAt: at('read_at'),
    createdAt: at('created_at').notNull().defaultNow(),
  },
  (t) => [
    index('notifications_account_idx').on(t.accountId, t.id),
    uniqueIndex('notifications_account_event').on(t.accountId, t.eventId),
    index('notifications_created').on(t.createdAt),
  ],
)
