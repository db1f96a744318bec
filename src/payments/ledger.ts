import { randomUUID } from 'node:crypto'
import { type SQL, sql } from 'drizzle-orm'
import { type Db, queryRows, type Tx } from '../db/client.ts'

// The double-entry ledger, in micro-USD. Every change of money is one journal whose legs sum to
// zero, so the sum of all legs is zero too (`ledgerImbalance` checks it). A user's balance is the
// sum of their `available` legs; their holds are `held` legs, one pot per deployment.

export type Book =
  | 'available'
  | 'held'
  | 'revenue'
  | 'operator_payable'
  | 'refunds'
  | 'chain_inflow'
  | 'grants'
export type Cause = 'payment' | 'hold' | 'charge' | 'release' | 'refund' | 'grant' | 'reversal'

export interface Leg {
  book: Book
  accountId?: string | null
  deploymentId?: string | null
  /** The fleet node a node operator's share was earned (or forfeited) on. */
  nodeId?: string | null
  amount: bigint
}

export interface JournalInput {
  cause: Cause
  memo: string
  accountId?: string | null
  deploymentId?: string | null
  orderId?: string | null
  paymentId?: string | null
  chainId?: number | null
  tokenSymbol?: string | null
  tokenAmount?: bigint | null
  /** A journal with a key already in the ledger is not written again (exactly-once charges). */
  dedupeKey?: string | null
  legs: Leg[]
}

/** Writes one balanced journal; returns its id, or null when its dedupe key was already used. */
export async function postJournal(tx: Tx, input: JournalInput): Promise<string | null> {
  const legs = input.legs.filter((leg) => leg.amount !== 0n)
  const sum = legs.reduce((total, leg) => total + leg.amount, 0n)
  if (sum !== 0n) throw new Error(`unbalanced ${input.cause} journal: legs sum to ${sum}`)
  if (legs.length === 0) return null
  const id = randomUUID()
  const inserted = await queryRows<{ id: string }>(
    tx,
    sql`insert into ledger_journals
          (id, cause, account_id, deployment_id, order_id, payment_id, memo, chain_id, token_symbol, token_amount, dedupe_key)
        values (${id}, ${input.cause}, ${input.accountId ?? null}, ${input.deploymentId ?? null},
                ${input.orderId ?? null}, ${input.paymentId ?? null}, ${input.memo}, ${input.chainId ?? null},
                ${input.tokenSymbol ?? null}, ${input.tokenAmount?.toString() ?? null}, ${input.dedupeKey ?? null})
        on conflict (dedupe_key) do nothing
        returning id`,
  )
  if (inserted.length === 0) return null
  const values: SQL[] = legs.map(
    (leg) =>
      sql`(${id}, ${leg.book}, ${leg.accountId ?? null}, ${leg.deploymentId ?? null}, ${leg.nodeId ?? null}, ${leg.amount.toString()})`,
  )
  await tx.execute(
    sql`insert into ledger_postings (journal_id, book, account_id, deployment_id, node_id, amount_micro_usd)
        values ${sql.join(values, sql`, `)}`,
  )
  return id
}

/**
 * Serialises money decisions for one account (holds, charges, reversals) so that two of them
 * never both spend the same balance. Call first inside the transaction.
 */
export async function lockAccount(tx: Tx, accountId: string): Promise<void> {
  await tx.execute(sql`select id from accounts where id = ${accountId} for update`)
}

export interface Balance {
  available: bigint
  held: bigint
}

export async function balanceOf(db: Db | Tx, accountId: string): Promise<Balance> {
  const [row] = await queryRows<{ available: string | null; held: string | null }>(
    db,
    sql`select coalesce(sum(amount_micro_usd) filter (where book = 'available'), 0)::text as available,
               coalesce(sum(amount_micro_usd) filter (where book = 'held'), 0)::text as held
          from ledger_postings where account_id = ${accountId}`,
  )
  return { available: BigInt(row?.available ?? 0), held: BigInt(row?.held ?? 0) }
}

/** What is held for one deployment. */
export async function heldFor(db: Db | Tx, deploymentId: string): Promise<bigint> {
  const [row] = await queryRows<{ held: string }>(
    db,
    sql`select coalesce(sum(amount_micro_usd), 0)::text as held
          from ledger_postings where deployment_id = ${deploymentId} and book = 'held'`,
  )
  return BigInt(row?.held ?? 0)
}

/** Total of every leg in the ledger, and the journals whose own legs do not sum to zero. Both must be empty/zero. */
export async function ledgerImbalance(db: Db): Promise<{ total: bigint; unbalancedJournals: string[] }> {
  const [total] = await queryRows<{ total: string }>(
    db,
    sql`select coalesce(sum(amount_micro_usd), 0)::text as total from ledger_postings`,
  )
  const unbalanced = await queryRows<{ journal_id: string }>(
    db,
    sql`select journal_id from ledger_postings group by journal_id having sum(amount_micro_usd) <> 0`,
  )
  return { total: BigInt(total?.total ?? 0), unbalancedJournals: unbalanced.map((r) => r.journal_id) }
}

/** Sum of one book across all accounts (for metrics: revenue, refunds, charges). */
export async function bookTotal(db: Db, book: Book): Promise<bigint> {
  const [row] = await queryRows<{ total: string }>(
    db,
    sql`select coalesce(sum(amount_micro_usd), 0)::text as total from ledger_postings where book = ${book}`,
  )
  return BigInt(row?.total ?? 0)
}

/** Deployments of an account that wait for payment are looked at again now that money arrived. */
export async function wakeAwaitingPayment(tx: Tx, accountId: string): Promise<void> {
  await tx.execute(
    sql`update deployments set next_reconcile_at = now()
         where owner_id = ${accountId} and status = 'awaiting_payment' and lease_owner is null`,
  )
}

/** Moves `amount` of an account's available balance into the hold of one of its deployments. */
export async function holdForDeployment(
  tx: Tx,
  hold: { accountId: string; deploymentId: string; amount: bigint; memo: string; orderId?: string },
): Promise<void> {
  await postJournal(tx, {
    cause: 'hold',
    memo: hold.memo,
    accountId: hold.accountId,
    deploymentId: hold.deploymentId,
    orderId: hold.orderId ?? null,
    legs: [
      { book: 'available', accountId: hold.accountId, amount: -hold.amount },
      { book: 'held', accountId: hold.accountId, deploymentId: hold.deploymentId, amount: hold.amount },
    ],
  })
}

/**
 * Makes sure `need` is held for a deployment, moving what is missing from the account's available
 * balance. When it cannot, says what was available (for the caller's message). Call under
 * `lockAccount`.
 */
export async function ensureHeld(
  tx: Tx,
  hold: { accountId: string; deploymentId: string; need: bigint; memo: string },
): Promise<{ covered: true; added: bigint } | { covered: false; available: bigint }> {
  const held = await heldFor(tx, hold.deploymentId)
  if (held >= hold.need) return { covered: true, added: 0n }
  const { available } = await balanceOf(tx, hold.accountId)
  const missing = hold.need - held
  if (available < missing) return { covered: false, available }
  await holdForDeployment(tx, {
    accountId: hold.accountId,
    deploymentId: hold.deploymentId,
    amount: missing,
    memo: hold.memo,
  })
  return { covered: true, added: missing }
}
