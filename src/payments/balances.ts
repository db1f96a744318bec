import { sql } from 'drizzle-orm'
import { appendAudit } from '../audit/audit-log.ts'
import { type Database, queryRows } from '../db/client.ts'
import type { ChangeSource } from '../domain/actor.ts'
import { appendOutbox } from '../events/outbox.ts'
import { findOrCreateAccountByAddress } from '../identity/accounts.ts'
import { balanceOf, heldFor, lockAccount, postJournal, wakeAwaitingPayment } from './ledger.ts'

// A user's view of their money, and the operator's grants. Amounts leave berth as decimal strings
// of micro-USD so that no client parses them into floating point.

export interface LedgerItem {
  id: string
  cause: string
  memo: string
  /** Change of the available balance (negative when money left it). */
  availableMicroUsd: string
  /** Change of the amount held for deployments. */
  heldMicroUsd: string
  deploymentId: string | null
  orderId: string | null
  paymentId: string | null
  chainId: number | null
  tokenSymbol: string | null
  tokenAmount: string | null
  at: string
}

export function createBalances(database: Database) {
  async function balance(accountId: string) {
    const { available, held } = await balanceOf(database.db, accountId)
    return { availableMicroUsd: available.toString(), heldMicroUsd: held.toString() }
  }

  async function ledger(accountId: string, page: { limit: number; offset: number }) {
    const rows = await queryRows<Record<string, unknown>>(
      database.db,
      sql`select j.id, j.cause, j.memo, j.deployment_id, j.order_id, j.payment_id, j.chain_id, j.token_symbol,
                 j.token_amount::text as token_amount, j.created_at,
                 coalesce(sum(p.amount_micro_usd) filter (where p.book = 'available'), 0)::text as available,
                 coalesce(sum(p.amount_micro_usd) filter (where p.book = 'held'), 0)::text as held
            from ledger_journals j join ledger_postings p on p.journal_id = j.id and p.account_id = ${accountId}
           group by j.id
           order by j.created_at desc, j.id
           limit ${page.limit} offset ${page.offset}`,
    )
    const items: LedgerItem[] = rows.map((r) => ({
      id: String(r.id),
      cause: String(r.cause),
      memo: String(r.memo),
      availableMicroUsd: String(r.available),
      heldMicroUsd: String(r.held),
      deploymentId: (r.deployment_id as string | null) ?? null,
      orderId: (r.order_id as string | null) ?? null,
      paymentId: (r.payment_id as string | null) ?? null,
      chainId: (r.chain_id as number | null) ?? null,
      tokenSymbol: (r.token_symbol as string | null) ?? null,
      tokenAmount: (r.token_amount as string | null) ?? null,
      at: new Date(r.created_at as string).toISOString(),
    }))
    return { items }
  }

  /** The operator gives credits (a grant) or returns money it owes (a refund) to a wallet. */
  async function credit(
    address: string,
    amountMicroUsd: bigint,
    reason: string,
    kind: 'grant' | 'refund',
    source: ChangeSource,
  ) {
    return database.db.transaction(async (tx) => {
      const account = await findOrCreateAccountByAddress(tx, address)
      await lockAccount(tx, account.id)
      await postJournal(tx, {
        cause: kind,
        memo: reason,
        accountId: account.id,
        legs: [
          { book: kind === 'grant' ? 'grants' : 'refunds', amount: -amountMicroUsd },
          { book: 'available', accountId: account.id, amount: amountMicroUsd },
        ],
      })
      const { available, held } = await balanceOf(tx, account.id)
      await wakeAwaitingPayment(tx, account.id)
      // Nothing arrived, nothing to tell (a zero grant only opens an account).
      if (amountMicroUsd > 0n) {
        await appendOutbox(tx, [
          {
            ownerId: account.id,
            type: 'payment.credited',
            payload: { microUsd: amountMicroUsd.toString(), source: `operator_${kind}`, reason },
          },
        ])
      }
      await appendAudit(tx, [
        {
          ownerId: account.id,
          source,
          action: `billing.${kind}`,
          target: `account:${account.address}`,
          detail: { microUsd: amountMicroUsd.toString(), reason },
        },
      ])
      return {
        address: account.address!,
        availableMicroUsd: available.toString(),
        heldMicroUsd: held.toString(),
      }
    })
  }

  /** The billing state of one deployment (the caller checks ownership first). */
  async function deploymentBilling(deploymentId: string, hourlyMicroUsd: bigint) {
    const [row] = await queryRows<{
      paid_until: Date | string | null
      billed_through: Date | string | null
      funds_exhausted_at: Date | string | null
    }>(
      database.db,
      sql`select paid_until, billed_through, funds_exhausted_at from deployment_billing where deployment_id = ${deploymentId}`,
    )
    const iso = (v: Date | string | null | undefined) => (v ? new Date(v).toISOString() : null)
    return {
      deploymentId,
      hourlyMicroUsd: hourlyMicroUsd.toString(),
      heldMicroUsd: (await heldFor(database.db, deploymentId)).toString(),
      paidUntil: iso(row?.paid_until),
      billedThrough: iso(row?.billed_through),
      fundsExhaustedAt: iso(row?.funds_exhausted_at),
    }
  }

  return { balance, ledger, credit, deploymentBilling }
}

export type Balances = ReturnType<typeof createBalances>
