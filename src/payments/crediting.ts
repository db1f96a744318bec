import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { type AuditRecord, appendAudit } from '../audit/audit-log.ts'
import type { TokenConfig } from '../config/payments-schema.ts'
import { type Database, queryRows, type Tx } from '../db/client.ts'
import type { RequestOrigin } from '../domain/actor.ts'
import { appendOutbox } from '../events/outbox.ts'
import { holdForDeployment, lockAccount, postJournal, wakeAwaitingPayment } from './ledger.ts'
import type { PaymentMetrics } from './metrics.ts'
import { type PriceE18, tokenToMicroUsd } from './money.ts'
import type { VerifiedTransfer } from './verify.ts'

// Crediting a verified transfer, exactly once. Every path (a hash the user submits, the watcher
// finding a transfer) ends here. The transfer's row is keyed by (chain, tx, log index); the first
// transaction to flip it from `pending` to `credited` writes the ledger entry, and any other,
// concurrent or later, finds it credited and writes nothing.

export interface CreditingDeps {
  database: Database
  /**
   * The token's price now (the median of its sources, without the quote buffer: at confirmation
   * the price is known, so there is no move to cover), for payments confirmed after their quote
   * expired or made without one.
   */
  currentRate(chainId: number, token: TokenConfig): Promise<PriceE18>
  now?: () => Date
  metrics?: PaymentMetrics
}

export type RecordOutcome =
  | { kind: 'unknown_payer' }
  | { kind: 'pending'; paymentId: string }
  | { kind: 'duplicate'; paymentId?: string }
  | { kind: 'credited'; paymentId: string; microUsd: bigint; orderId: string | null }

interface OrderRow {
  id: string
  status: string
  amount: string
  received: string
  rate_e18: string
  expires_at: Date | string
  deployment_id: string | null
  hours: number | null
  value_micro_usd: string
}

export async function recordTransfer(
  deps: CreditingDeps,
  transfer: VerifiedTransfer,
  /** `via`: the request that submitted the transaction, when one did (not the watcher). */
  options: { confirmed: boolean; orderId?: string; via?: RequestOrigin },
): Promise<RecordOutcome> {
  const now = deps.now ?? (() => new Date())
  // The current rate is read before the transaction when the order in view needs it, so that a
  // slow price source does not hold the account lock (it is read inside only if another payment
  // changed the order meanwhile).
  let rateNow: PriceE18 | undefined
  const currentRate = async () => {
    rateNow ??= await deps.currentRate(transfer.chainId, transfer.token)
    return rateNow
  }
  if (options.confirmed) {
    const inView = await pickOrder(deps.database.db, transfer, options.orderId ?? null, { lock: false })
    if (valuation(inView, transfer).needsCurrentRate) await currentRate()
  }

  const outcome = await deps.database.db.transaction(async (tx) => {
    const [account] = await queryRows<{ id: string }>(
      tx,
      sql`select id from accounts where address = ${transfer.payer}`,
    )
    if (!account) return { kind: 'unknown_payer' } as const
    const [payment] = await queryRows<{ id: string; order_id: string | null }>(
      tx,
      sql`insert into chain_payments
            (id, chain_id, tx_hash, log_index, token_address, token_symbol, payer, amount, block_number, block_hash,
             status, account_id, order_id)
          values (${randomUUID()}, ${transfer.chainId}, ${transfer.txHash}, ${transfer.logIndex}, ${transfer.token.address},
                  ${transfer.token.symbol}, ${transfer.payer}, ${transfer.amount.toString()}, ${transfer.blockNumber.toString()},
                  ${transfer.blockHash}, 'pending', ${account.id}, ${options.orderId ?? null})
          on conflict (chain_id, tx_hash, log_index) do update
            set block_number = excluded.block_number, block_hash = excluded.block_hash,
                order_id = coalesce(chain_payments.order_id, excluded.order_id)
            where chain_payments.status = 'pending'
          returning id, order_id`,
    )
    if (!payment) return { kind: 'duplicate' } as const
    if (!options.confirmed) {
      if (payment.order_id) {
        await tx.execute(
          sql`update orders set status = 'processing', updated_at = ${now()} where id = ${payment.order_id} and status = 'init'`,
        )
      }
      return { kind: 'pending', paymentId: payment.id } as const
    }

    await lockAccount(tx, account.id)
    const order = await pickOrder(tx, transfer, payment.order_id, { lock: true, accountId: account.id })
    const value = valuation(order, transfer)
    const rate = value.quotedRate ?? (await currentRate())
    const surplusRate = value.surplus > 0n ? min(rate, await currentRate()) : rate
    const microUsd =
      tokenToMicroUsd(transfer.amount - value.surplus, transfer.token.decimals, rate) +
      tokenToMicroUsd(value.surplus, transfer.token.decimals, surplusRate)
    const flipped = await queryRows<{ id: string }>(
      tx,
      sql`update chain_payments
             set status = 'credited', credited_micro_usd = ${microUsd.toString()}, rate_e18 = ${rate.toString()},
                 order_id = ${order?.id ?? null}, credited_at = ${now()}
           where id = ${payment.id} and status = 'pending' returning id`,
    )
    if (flipped.length === 0) return { kind: 'duplicate', paymentId: payment.id } as const

    await postJournal(tx, {
      cause: 'payment',
      memo: `${transfer.token.symbol} payment ${transfer.txHash} on chain ${transfer.chainId}`,
      accountId: account.id,
      orderId: order?.id ?? null,
      paymentId: payment.id,
      chainId: transfer.chainId,
      tokenSymbol: transfer.token.symbol,
      tokenAmount: transfer.amount,
      legs: [
        { book: 'chain_inflow', amount: -microUsd },
        { book: 'available', accountId: account.id, amount: microUsd },
      ],
    })
    if (order) await applyToOrder(tx, account.id, order, transfer.amount, microUsd, now())
    await wakeAwaitingPayment(tx, account.id)
    await appendOutbox(tx, [
      {
        ownerId: account.id,
        type: 'payment.credited',
        payload: {
          microUsd: microUsd.toString(),
          source: 'chain',
          paymentId: payment.id,
          orderId: order?.id ?? null,
          chainId: transfer.chainId,
          txHash: transfer.txHash,
          token: transfer.token.symbol,
          amount: transfer.amount.toString(),
        },
      },
    ])
    await billingEvent(
      tx,
      account.id,
      null,
      'payment_credited',
      `credited ${microUsd} micro-USD for ${transfer.amount} base units of ${transfer.token.symbol} (tx ${transfer.txHash})`,
      {
        paymentId: payment.id,
        orderId: order?.id ?? null,
        ...(value.surplus > 0n && value.quotedRate !== undefined
          ? { surplus: value.surplus.toString(), surplusRateE18: surplusRate.toString() }
          : {}),
      },
    )
    // The chain paid it (the transaction); the request that pointed berth at it, if any, is noted.
    await appendAudit(tx, [
      {
        ownerId: account.id,
        source: {
          actor: { type: 'chain', id: transfer.txHash },
          ip: options.via?.ip ?? null,
          requestId: options.via?.requestId ?? null,
        },
        action: 'payment.credit',
        target: `payment:${payment.id}`,
        detail: {
          microUsd: microUsd.toString(),
          chainId: transfer.chainId,
          token: transfer.token.symbol,
          amount: transfer.amount.toString(),
          orderId: order?.id ?? null,
        },
      },
    ])
    return { kind: 'credited', paymentId: payment.id, microUsd, orderId: order?.id ?? null } as const
  })
  if (outcome.kind === 'credited') {
    deps.metrics?.confirmationLag.observe(Math.max(0, now().getTime() - transfer.blockTime.getTime()) / 1000)
  }
  return outcome
}

/**
 * The order a transfer pays: the one it was submitted for, else the account's oldest open order
 * for this token. Without the lock (and without the account, found from the payer) it is a look
 * ahead, to know whether the current rate will be needed.
 */
async function pickOrder(
  db: Tx | Database['db'],
  transfer: VerifiedTransfer,
  submittedFor: string | null,
  options: { lock: boolean; accountId?: string },
): Promise<OrderRow | undefined> {
  const lock = options.lock ? sql`for update` : sql``
  const account = options.accountId
    ? sql`${options.accountId}`
    : sql`(select id from accounts where address = ${transfer.payer})`
  const [order] = await queryRows<OrderRow>(
    db,
    submittedFor
      ? sql`select * from orders where id = ${submittedFor} ${lock}`
      : sql`select * from orders
             where account_id = ${account} and chain_id = ${transfer.chainId} and token_address = ${transfer.token.address}
               and (status in ('init', 'processing') or (status = 'expired' and received = 0))
             order by created_at limit 1 ${lock}`,
  )
  return order
}

/**
 * How a transfer is valued. Within its quote's validity it is valued at the quoted rate, but only
 * up to what the order still asks for: the quote promised that much, no more. The rest (a
 * surplus) is valued at the lower of the quoted and the current rate, so paying more than asked
 * never buys credits at a rate the market has left. Without an open quote, all at the current rate.
 */
function valuation(order: OrderRow | undefined, transfer: VerifiedTransfer) {
  const inQuote = order !== undefined && transfer.blockTime.getTime() <= new Date(order.expires_at).getTime()
  if (!inQuote) return { quotedRate: undefined, surplus: 0n, needsCurrentRate: true }
  const stillAsked = BigInt(order.amount) - BigInt(order.received)
  const surplus = transfer.amount > stillAsked ? transfer.amount - (stillAsked > 0n ? stillAsked : 0n) : 0n
  return { quotedRate: BigInt(order.rate_e18), surplus, needsCurrentRate: surplus > 0n }
}

const min = (a: bigint, b: bigint) => (a < b ? a : b)

async function applyToOrder(
  tx: Tx,
  accountId: string,
  order: OrderRow,
  amount: bigint,
  microUsd: bigint,
  now: Date,
): Promise<void> {
  const received = BigInt(order.received) + amount
  const paid = received >= BigInt(order.amount)
  await tx.execute(
    sql`update orders
           set received = ${received.toString()}, credited_micro_usd = credited_micro_usd + ${microUsd.toString()},
               status = ${paid ? 'success' : 'processing'}, updated_at = ${now}
         where id = ${order.id}`,
  )
  const justPaid = paid && order.status !== 'success'
  if (!justPaid || !order.deployment_id || !order.hours) return
  // A paid period: reserve its value for the deployment and extend how long it is paid for.
  const value = BigInt(order.value_micro_usd)
  await holdForDeployment(tx, {
    accountId,
    deploymentId: order.deployment_id,
    amount: value,
    memo: `prepaid ${order.hours}h for deployment ${order.deployment_id}`,
    orderId: order.id,
  })
  const at = now.toISOString()
  await tx.execute(
    sql`insert into deployment_billing (deployment_id, account_id, paid_until)
        values (${order.deployment_id}, ${accountId}, ${at}::timestamptz + make_interval(hours => ${order.hours}::int))
        on conflict (deployment_id) do update
          set paid_until = greatest(coalesce(deployment_billing.paid_until, ${at}::timestamptz), ${at}::timestamptz)
                           + make_interval(hours => ${order.hours}::int),
              updated_at = ${at}::timestamptz`,
  )
}

/**
 * Blocks from `fromBlock` on are no longer canonical. Payments in them go back to `pending`; those
 * already credited get a reversing entry and an incident event, never a silent change.
 */
export async function reversePaymentsFrom(
  tx: Tx,
  chainId: number,
  fromBlock: bigint,
  now: Date,
): Promise<number> {
  const orphaned = await queryRows<{
    id: string
    status: string
    account_id: string
    order_id: string | null
    amount: string
    credited_micro_usd: string
    tx_hash: string
    token_symbol: string
  }>(
    tx,
    sql`select * from chain_payments where chain_id = ${chainId} and block_number >= ${fromBlock.toString()}
          order by block_number for update`,
  )
  let reversed = 0
  const audit: AuditRecord[] = []
  for (const payment of orphaned) {
    if (payment.status === 'credited') {
      reversed++
      await lockAccount(tx, payment.account_id)
      const microUsd = BigInt(payment.credited_micro_usd)
      await postJournal(tx, {
        cause: 'reversal',
        memo: `reorg on chain ${chainId} removed payment ${payment.tx_hash}`,
        accountId: payment.account_id,
        orderId: payment.order_id,
        paymentId: payment.id,
        chainId,
        tokenSymbol: payment.token_symbol,
        tokenAmount: BigInt(payment.amount),
        legs: [
          { book: 'available', accountId: payment.account_id, amount: -microUsd },
          { book: 'chain_inflow', amount: microUsd },
        ],
      })
      if (payment.order_id) {
        await tx.execute(
          sql`update orders
                 set received = received - ${payment.amount}, credited_micro_usd = credited_micro_usd - ${microUsd.toString()},
                     status = case when received - ${payment.amount} > 0 then 'processing' else 'init' end, updated_at = ${now}
               where id = ${payment.order_id}`,
        )
      }
      await appendOutbox(tx, [
        {
          ownerId: payment.account_id,
          type: 'payment.reversed',
          payload: {
            microUsd: microUsd.toString(),
            paymentId: payment.id,
            chainId,
            txHash: payment.tx_hash,
            token: payment.token_symbol,
            amount: payment.amount,
          },
        },
      ])
      await billingEvent(
        tx,
        payment.account_id,
        null,
        'payment_reversed',
        `a chain reorganisation on chain ${chainId} removed payment ${payment.tx_hash}; ${microUsd} micro-USD were taken back`,
        {
          paymentId: payment.id,
          incident: true,
        },
      )
      audit.push({
        ownerId: payment.account_id,
        source: { actor: { type: 'system', id: 'chain-reorg' } },
        action: 'payment.reverse',
        target: `payment:${payment.id}`,
        detail: { microUsd: microUsd.toString(), chainId, txHash: payment.tx_hash },
      })
    }
    await tx.execute(
      sql`update chain_payments set status = 'pending', block_number = null, block_hash = null,
                 credited_micro_usd = 0, credited_at = null
           where id = ${payment.id}`,
    )
  }
  await appendAudit(tx, audit)
  return reversed
}

export async function billingEvent(
  tx: Tx,
  accountId: string | null,
  deploymentId: string | null,
  type: string,
  message: string,
  data?: unknown,
): Promise<void> {
  await tx.execute(
    sql`insert into billing_events (account_id, deployment_id, type, message, data)
        values (${accountId}, ${deploymentId}, ${type}, ${message}, ${data === undefined ? null : JSON.stringify(data)}::jsonb)`,
  )
}
