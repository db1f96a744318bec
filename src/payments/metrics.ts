import { sql } from 'drizzle-orm'
import { Gauge, Histogram, type Registry } from 'prom-client'
import { type Database, queryRows } from '../db/client.ts'
import { bookTotal } from './ledger.ts'

// Payment metrics. Totals are read from the ledger when scraped, so every process sharing a
// database reports the same figures and nothing is lost across restarts.

export interface PaymentMetrics {
  /** Seconds from a payment's block to its credit. */
  confirmationLag: Histogram
}

export function registerPaymentMetrics(registry: Registry, database: Database): PaymentMetrics {
  new Gauge({
    name: 'berth_payments',
    help: 'Chain payments by status',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      this.reset()
      const rows = await queryRows<{ status: string; n: number }>(
        database.db,
        sql`select status, count(*)::int as n from chain_payments group by status`,
      )
      for (const { status, n } of rows) this.set({ status }, n)
    },
  })
  new Gauge({
    name: 'berth_credits_charged_micro_usd',
    help: 'Credits charged for running deployments, in micro-USD',
    registers: [registry],
    async collect() {
      const charged =
        (await bookTotal(database.db, 'revenue')) + (await bookTotal(database.db, 'operator_payable'))
      this.set(Number(charged))
    },
  })
  new Gauge({
    name: 'berth_refunds_micro_usd',
    help: 'Credits refunded by the operator, in micro-USD',
    registers: [registry],
    async collect() {
      this.set(Number(-(await bookTotal(database.db, 'refunds'))))
    },
  })
  return {
    confirmationLag: new Histogram({
      name: 'berth_payment_confirmation_lag_seconds',
      help: 'Time from the block holding a payment to its credit',
      buckets: [1, 5, 15, 30, 60, 120, 300, 900, 3600],
      registers: [registry],
    }),
  }
}
