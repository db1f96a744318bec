import assert from 'node:assert/strict'
import { after, before } from 'node:test'
import { pino } from 'pino'
import type { NetworkConfig } from '../../src/config/payments-schema.ts'
import type { DatabaseKind } from '../../src/db/client.ts'
import { systemSource } from '../../src/domain/actor.ts'
import { BerthError } from '../../src/domain/errors.ts'
import { createMetrics } from '../../src/metrics/registry.ts'
import { balanceOf, ledgerImbalance } from '../../src/payments/ledger.ts'
import { createPayments, type Payments } from '../../src/payments/payments.ts'
import { anvilAccount } from './anvil.ts'
import { openTestDatabase, type TestDatabase } from './db.ts'
import { PAYER, type PaymentChains } from './payments-fixture.ts'
import { createAccount, createStack, type Stack } from './stack.ts'

// The payments service on one database kind, for the tests that quote and pay orders by hash on
// the payment chains: the payer's account, and the checks those tests share.

export interface PaymentsService {
  readonly database: TestDatabase
  readonly stack: Stack
  readonly payments: Payments
  /** The account of the payments fixture's payer. */
  readonly accountId: string
  /** The payments service on this test's database: the fixture's networks unless told otherwise. */
  paymentsWith(options?: { networks?: NetworkConfig[]; now?: () => Date }): Promise<Payments>
  /** The ledger sums to zero, journal by journal. */
  assertBalanced(): Promise<void>
  /** The payer's available balance, in micro-USD. */
  available(): Promise<bigint>
  quoteFor(credits: bigint, token?: string, chainId?: number): ReturnType<Payments['orders']['quote']>
  /** Asserts that `promise` fails with a BerthError whose message matches `pattern`. */
  rejects(promise: Promise<unknown>, pattern: RegExp): Promise<void>
}

/** Registers, in the describe it is called in, the hooks that set up (and tear down) one kind. */
export function usePaymentsService(chains: () => PaymentChains, kind: DatabaseKind): PaymentsService {
  let database: TestDatabase
  let stack: Stack
  let payments: Payments
  let accountId: string
  const payer = anvilAccount(PAYER).address.toLowerCase()

  before(async () => {
    database = await openTestDatabase(kind)
    stack = await createStack(database, { start: false })
    payments = await paymentsWith()
    accountId = await createAccount(database, payer)
  })
  after(async () => {
    await stack.stop()
    await database.dispose()
  })

  const paymentsWith = (options: { networks?: NetworkConfig[]; now?: () => Date } = {}) =>
    createPayments({
      database,
      store: stack.store,
      events: stack.events,
      config: { ...stack.config, networks: options.networks ?? chains().networks() },
      metrics: createMetrics(async () => []),
      logger: pino({ level: 'silent' }),
      ...(options.now ? { now: options.now } : {}),
    })
  return {
    get database() {
      return database
    },
    get stack() {
      return stack
    },
    get payments() {
      return payments
    },
    get accountId() {
      return accountId
    },
    paymentsWith,
    async assertBalanced() {
      const { total, unbalancedJournals } = await ledgerImbalance(database.db)
      assert.equal(total, 0n)
      assert.deepEqual(unbalancedJournals, [])
    },
    available: async () => (await balanceOf(database.db, accountId)).available,
    quoteFor: (credits, token = 'USDC', chainId = chains().a.chainId) =>
      payments.orders.quote(accountId, { creditsMicroUsd: credits, chainId, token }, systemSource('test')),
    async rejects(promise, pattern) {
      await assert.rejects(promise, (error: unknown) => {
        assert.ok(error instanceof BerthError, String(error))
        assert.match(error.message, pattern)
        return true
      })
    },
  }
}
