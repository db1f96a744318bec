import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { sql } from 'drizzle-orm'
import { queryRows } from '../src/db/client.ts'
import { systemSource } from '../src/domain/actor.ts'
import { deploymentSpecSchema } from '../src/domain/spec.ts'
import { createBalances } from '../src/payments/balances.ts'
import { createBilling } from '../src/payments/billing.ts'
import { createFunding } from '../src/payments/funding.ts'
import { balanceOf, bookTotal, ledgerImbalance } from '../src/payments/ledger.ts'
import { FAIL_AT_LABEL } from '../src/providers/simulated/simulated-provider.ts'
import { auditLines, auditOf } from './helpers/audit.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { outboxTypes } from './helpers/outbox.ts'
import { testPricing } from './helpers/payments-fixture.ts'
import { createStack, type Stack } from './helpers/stack.ts'
import { waitFor } from './helpers/wait.ts'

// A deployment's whole money flow on the simulated provider, with an injected clock: it waits for
// payment, holds its first interval, is charged per interval while running, warns, runs out, gets
// its grace period, is stopped with `out_of_funds`, and starts again after a top-up. The ledger
// balances after every step.

const HOUR = 3600_000
const pricing = testPricing
const payments = {
  required: true,
  commissionPercent: 10,
  gracePeriodSeconds: 1800,
  lowBalanceWarningMicroUsd: 1_500_000,
}

for (const kind of databaseKinds) {
  describe(`money flow of a deployment (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let clock = new Date('2026-01-01T00:00:00Z')
    const now = () => clock
    const address = `0x${'ab'.repeat(20)}`

    before(async () => {
      database = await openTestDatabase(kind)
      const flags = { payments, pricing }
      const configForFunding = { payments: { ...payments, quoteTtlSeconds: 900 }, pricing }
      stack = await createStack(database, { flags, now, funding: createFunding(database, configForFunding) })
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    const balances = () => createBalances(database)
    const billing = () =>
      createBilling({ database, store: stack.store, events: stack.events, config: stack.config, now })
    const assertBalanced = async () => {
      const { total, unbalancedJournals } = await ledgerImbalance(database.db)
      assert.equal(total, 0n, 'all ledger legs sum to zero')
      assert.deepEqual(unbalancedJournals, [])
    }
    const accountIdOf = async (who: string) =>
      (await queryRows<{ id: string }>(database.db, sql`select id from accounts where address = ${who}`))[0]!
        .id
    const statusOf = async (id: string) =>
      (
        await queryRows<{ status: string; stop_reason: string | null }>(
          database.db,
          sql`select status, stop_reason from deployments where id = ${id}`,
        )
      )[0]!
    const eventTypes = async (id: string) =>
      (
        await queryRows<{ type: string }>(
          database.db,
          sql`select type from deployment_events where deployment_id = ${id} order by seq`,
        )
      ).map((e) => e.type)

    test('hold → charges → low balance → out of funds → grace → stop → top-up → resume', async () => {
      const account = await balances().credit(address, 0n, 'open the account', 'grant', systemSource('test'))
      const ownerId = await accountIdOf(account.address)
      const spec = deploymentSpecSchema.parse({ name: 'paid', image: 'app:1', resources: { cpus: 1 } })
      const { row } = await stack.store.create({
        source: systemSource('test'),
        ownerId: ownerId,
        spec,
        provider: 'simulated',
      })

      await waitFor('awaiting payment', async () => (await statusOf(row.id)).status === 'awaiting_payment')
      await balances().credit(address, 2_500_000n, 'top-up', 'grant', systemSource('test'))
      await waitFor('running once funded', async () => (await statusOf(row.id)).status === 'running')
      assert.deepEqual(await balanceOf(database.db, ownerId), { available: 1_500_000n, held: 1_000_000n })
      await assertBalanced()

      // Half an interval running is not charged.
      clock = new Date(clock.getTime() + HOUR / 2)
      assert.equal((await billing().pass()).charged, 0)
      clock = new Date(clock.getTime() + HOUR / 2)
      assert.equal((await billing().pass()).charged, 1)
      assert.deepEqual(await balanceOf(database.db, ownerId), { available: 500_000n, held: 1_000_000n })
      // The same moment again charges nothing more.
      assert.equal((await billing().pass()).charged, 0)
      await assertBalanced()

      clock = new Date(clock.getTime() + HOUR)
      assert.equal((await billing().pass()).charged, 1)
      // The hold could not be refilled: the grace period runs, the deployment keeps running.
      assert.deepEqual(await balanceOf(database.db, ownerId), { available: 500_000n, held: 0n })
      assert.equal((await statusOf(row.id)).status, 'running')
      const types = await eventTypes(row.id)
      assert.ok(types.includes('low_balance'), `low balance warned: ${types}`)
      assert.ok(types.includes('funds_exhausted'))
      assert.equal(await bookTotal(database.db, 'revenue'), 200_000n, '10% commission of two charges')
      assert.equal(await bookTotal(database.db, 'operator_payable'), 1_800_000n)

      clock = new Date(clock.getTime() + 1799_000)
      assert.equal((await billing().pass()).stopped, 0, 'still within the grace period')
      clock = new Date(clock.getTime() + 1000)
      assert.equal((await billing().pass()).stopped, 1)
      await waitFor('stopped for lack of funds', async () => (await statusOf(row.id)).status === 'stopped')
      assert.equal((await statusOf(row.id)).stop_reason, 'out_of_funds')
      await assertBalanced()
      // What the owner was told, each once, in the order it happened.
      assert.deepEqual(
        (await outboxTypes(database, ownerId)).filter(
          (t) => !t.startsWith('deployment.') || t.endsWith('funds'),
        ),
        ['payment.credited', 'balance.low', 'funds.exhausted', 'deployment.stopped_out_of_funds'],
      )

      await balances().credit(address, 3_000_000n, 'top-up', 'grant', systemSource('test'))
      assert.equal((await billing().pass()).resumed, 1)
      await waitFor('running after the top-up', async () => (await statusOf(row.id)).status === 'running')
      assert.deepEqual(await balanceOf(database.db, ownerId), { available: 2_500_000n, held: 1_000_000n })
      await assertBalanced()

      // Each money decision is in the owner's audit log, berth's own ones as system:billing.
      assert.deepEqual(await auditLines(database, ownerId), [
        'system:test billing.grant',
        'system:test deployment.create',
        'system:test billing.grant',
        'system:billing billing.hold',
        'system:billing billing.charge',
        'system:billing billing.charge',
        'system:billing deployment.stop',
        'system:test billing.grant',
        'system:billing deployment.start',
        'system:billing billing.hold',
      ])
      const stop = (await auditOf(database, ownerId)).find((e) => e.action === 'deployment.stop')
      assert.equal(stop?.detail?.reason, 'out_of_funds')
    })

    test('a deployment that fails before running gets its whole hold back and is never charged', async () => {
      const who = `0x${'cd'.repeat(20)}`
      await balances().credit(who, 5_000_000n, 'grant', 'grant', systemSource('test'))
      const ownerId = await accountIdOf(who)
      const spec = deploymentSpecSchema.parse({
        name: 'broken',
        image: 'app:1',
        resources: { cpus: 1 },
        labels: { [FAIL_AT_LABEL]: 'starting' },
      })
      const { row } = await stack.store.create({
        source: systemSource('test'),
        ownerId: ownerId,
        spec,
        provider: 'simulated',
      })
      await waitFor('failed', async () => (await statusOf(row.id)).status === 'failed')
      clock = new Date(clock.getTime() + 5 * HOUR)
      await billing().pass()
      const charges = await queryRows(
        database.db,
        sql`select id from ledger_journals where deployment_id = ${row.id} and cause = 'charge'`,
      )
      assert.equal(charges.length, 0)
      assert.deepEqual(await balanceOf(database.db, ownerId), { available: 5_000_000n, held: 0n })
      await assertBalanced()
      // The hold and its return are in the owner's audit log, as billing's doing.
      const money = (await auditOf(database, ownerId)).filter(
        (e) => e.action.startsWith('billing.h') || e.action === 'billing.release',
      )
      assert.deepEqual(
        money.map((e) => [e.action, e.detail?.microUsd]),
        [
          ['billing.hold', '1000000'],
          ['billing.release', '1000000'],
        ],
      )
    })
  })
}
