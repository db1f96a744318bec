import { sql } from 'drizzle-orm'
import {
  bigint,
  bigserial,
  boolean,
  index,
  integer,
  jsonb,
  numeric,
  pgTable,
  text,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core'
import { accounts } from './accounts.ts'
import { at } from './columns.ts'
import { deployments } from './deployments.ts'

// Orders, chain payments and the double-entry ledger. Token amounts are numeric(78,0)
// (any uint256), micro-USD are bigint, prices are USD per whole token × 10^18 as numeric.

const uint256 = (name: string) => numeric(name, { precision: 78, scale: 0 })
const micro = (name: string) => bigint(name, { mode: 'bigint' })

/** A quote the user may pay: for credits, or for a deployment and a number of hours. */
export const orders = pgTable(
  'orders',
  {
    id: uuid('id').primaryKey(),
    accountId: uuid('account_id')
      .notNull()
      .references(() => accounts.id),
    deploymentId: uuid('deployment_id').references(() => deployments.id, { onDelete: 'set null' }),
    hours: integer('hours'),
    /** The credits the order buys. */
    valueMicroUsd: micro('value_micro_usd').notNull(),
    chainId: integer('chain_id').notNull(),
    tokenSymbol: text('token_symbol').notNull(),
    /** `native` or the ERC-20 contract, lower case. */
    tokenAddress: text('token_address').notNull(),
    decimals: integer('decimals').notNull(),
    amount: uint256('amount').notNull(),
    payTo: text('pay_to').notNull(),
    rateE18: uint256('rate_e18').notNull(),
    sources: jsonb('sources').notNull(),
    status: text('status').notNull().default('init'),
    received: uint256('received').notNull().default('0'),
    creditedMicroUsd: micro('credited_micro_usd').notNull().default(sql`0`),
    expiresAt: at('expires_at').notNull(),
    createdAt: at('created_at').notNull().defaultNow(),
    updatedAt: at('updated_at').notNull().defaultNow(),
  },
  (t) => [index('orders_account_idx').on(t.accountId, t.createdAt)],
)

/**
 * A verified transfer to the treasury. (chain_id, tx_hash, log_index) is unique forever, which is
 * what makes crediting exactly-once however often, and by whichever path, a payment arrives.
 * Native transfers use log_index -1.
 */
export const chainPayments = pgTable(
  'chain_payments',
  {
    id: uuid('id').primaryKey(),
    chainId: integer('chain_id').notNull(),
    txHash: text('tx_hash').notNull(),
    logIndex: integer('log_index').notNull(),
    tokenAddress: text('token_address').notNull(),
    tokenSymbol: text('token_symbol').notNull(),
    payer: text('payer').notNull(),
    amount: uint256('amount').notNull(),
    blockNumber: bigint('block_number', { mode: 'bigint' }),
    blockHash: text('block_hash'),
    /** pending (seen, not yet at depth, or orphaned by a reorg) | credited */
    status: text('status').notNull(),
    accountId: uuid('account_id')
      .notNull()
      .references(() => accounts.id),
    orderId: uuid('order_id').references(() => orders.id),
    rateE18: uint256('rate_e18'),
    creditedMicroUsd: micro('credited_micro_usd').notNull().default(sql`0`),
    createdAt: at('created_at').notNull().defaultNow(),
    creditedAt: at('credited_at'),
  },
  (t) => [
    uniqueIndex('chain_payments_transfer_key').on(t.chainId, t.txHash, t.logIndex),
    index('chain_payments_order_idx').on(t.orderId),
    index('chain_payments_block_idx').on(t.chainId, t.blockNumber),
  ],
)

/** One balanced ledger transaction; `dedupe_key` makes periodic charges exactly-once. */
export const ledgerJournals = pgTable(
  'ledger_journals',
  {
    id: uuid('id').primaryKey(),
    /** payment | hold | charge | release | refund | grant | reversal */
    cause: text('cause').notNull(),
    accountId: uuid('account_id').references(() => accounts.id),
    deploymentId: uuid('deployment_id').references(() => deployments.id, { onDelete: 'set null' }),
    orderId: uuid('order_id').references(() => orders.id),
    paymentId: uuid('payment_id').references(() => chainPayments.id),
    memo: text('memo').notNull(),
    chainId: integer('chain_id'),
    tokenSymbol: text('token_symbol'),
    tokenAmount: uint256('token_amount'),
    dedupeKey: text('dedupe_key'),
    createdAt: at('created_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('ledger_journals_dedupe_key').on(t.dedupeKey),
    index('ledger_journals_account_idx').on(t.accountId, t.createdAt),
  ],
)

/**
 * The legs of a journal; the legs of every journal sum to zero. Books: `available` and `held`
 * (a user's), `revenue` (commission), `operator_payable`, `refunds`, `chain_inflow`, `grants`.
 */
export const ledgerPostings = pgTable(
  'ledger_postings',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    journalId: uuid('journal_id')
      .notNull()
      .references(() => ledgerJournals.id),
    book: text('book').notNull(),
    accountId: uuid('account_id').references(() => accounts.id),
    /** Holds are per deployment. */
    deploymentId: uuid('deployment_id'),
    /** The fleet node a node operator's share (or a share it forfeited) was earned on. */
    nodeId: uuid('node_id'),
    amountMicroUsd: micro('amount_micro_usd').notNull(),
  },
  (t) => [
    index('ledger_postings_node_idx').on(t.nodeId),
    index('ledger_postings_account_idx').on(t.accountId, t.book),
    index('ledger_postings_deployment_idx').on(t.deploymentId, t.book),
  ],
)

/** Billing state of a deployment while payments are required. */
export const deploymentBilling = pgTable('deployment_billing', {
  deploymentId: uuid('deployment_id')
    .primaryKey()
    .references(() => deployments.id, { onDelete: 'cascade' }),
  accountId: uuid('account_id')
    .notNull()
    .references(() => accounts.id),
  /** Charged up to here within the current billable stretch. */
  billedThrough: at('billed_through'),
  /** Prepaid until; later orders for the deployment extend it. */
  paidUntil: at('paid_until'),
  lowBalanceWarned: boolean('low_balance_warned').notNull().default(false),
  /** When the balance stopped covering the next interval; the grace period runs from here. */
  fundsExhaustedAt: at('funds_exhausted_at'),
  updatedAt: at('updated_at').notNull().defaultNow(),
})

/** What happened to an account's money that a user or operator must see (credits, reversals, warnings). */
export const billingEvents = pgTable(
  'billing_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    accountId: uuid('account_id').references(() => accounts.id),
    deploymentId: uuid('deployment_id'),
    type: text('type').notNull(),
    message: text('message').notNull(),
    data: jsonb('data'),
    at: at('at').notNull().defaultNow(),
  },
  (t) => [index('billing_events_account_idx').on(t.accountId, t.id)],
)
