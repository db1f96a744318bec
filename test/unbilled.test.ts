import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { systemSource } from '../src/domain/actor.ts'
import { createBalances } from '../src/payments/balances.ts'
import { createBilling } from '../src/payments/billing.ts'
import { createFunding } from '../src/payments/funding.ts'
import { balanceOf, bookTotal, ledgerImbalance } from '../src/payments/ledger.ts'
import { FAIL_AT_LABEL } from '../src/providers/simulated/simulated-provider.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { createTestApp, type Reply } from './helpers/http-app.ts'
import { testPricing } from './helpers/payments-fixture.ts'
import { createStack, type Stack } from './helpers/stack.ts'
import { waitFor } from './helpers/wait.ts'

// A tenant trying to run for free. A deployment is billed only once `running`, so what a gamer
// wants is a workload that stays `starting` (or keeps being restarted into it). berth bounds that:
// a start may stay unbilled at most billing.maxUnbilledStartSeconds, and every start (the restart
// ladder's, a user's restart, a start after a stop or a failure) counts against the restart
// budget, so the unbilled time per window is bounded whatever the spec and however it is driven.
// The clock is injected: the windows are the production defaults, walked through in steps.

const SECOND = 1000
const pricing = testPricing
const payments = { required: true, commissionPercent: 10, gracePeriodSeconds: 1800 }
const health = {
  restartLadderSeconds: [0],
  maxRestarts: 2,
  restartWindowSeconds: 3600,
  ladderResetSeconds: 600,
}

for (const kind of databaseKinds) {
  describe(`nobody runs unbilled (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let clock = new Date('2026-03-01T00:00:00Z')
    const now = () => clock
    const advance = (ms: number) => {
      clock = new Date(clock.getTime() + ms)
    }
    const address = `0x${'5e'.repeat(20)}`
    let call: (method: string, path: string, body?: unknown) => Promise<Reply>

    before(async () => {
      database = await openTestDatabase(kind)
      const flags = { payments, pricing, health, billing: { maxUnbilledStartSeconds: 600 } }
      const funding = createFunding(database, {
        payments: { ...payments, quoteTtlSeconds: 900, lowBalanceWarningMicroUsd: 0 },
        pricing,
      })
      stack = await createStack(database, { flags, now, funding })
      call = await (await createTestApp(database, stack, { now })).user(address)
      await createBalances(database).credit(address, 5_000_000n, 'grant', 'grant', systemSource('test'))
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    const deployment = async (id: string) => (await call('GET', `/v1/deployments/${id}`)).body
    const events = async (id: string) => (await call('GET', `/v1/deployments/${id}/events`)).body.items

    test('a health check that cannot pass within the unbilled window is refused at create', async () => {
      const refused = await call('POST', '/v1/deployments', {
        name: 'slow-check',
        image: 'app:1',
        ports: [{ containerPort: 80 }],
        healthCheck: { type: 'http', port: 80, healthyThreshold: 100, intervalSeconds: 3600 },
      })
      assert.equal(refused.status, 400)
      assert.match(refused.body.error.message, /360000s, more than billing\.maxUnbilledStartSeconds \(600s\)/)
      assert.equal(refused.body.error.details[0].path, 'healthCheck')
    })

    test('a never-healthy workload runs unbilled at most the window per start, for at most the budget of starts', async () => {
      // Reported unhealthy, but it would take 100 failed looks (100 s) to count as unhealthy: left
      // alone, it would sit in `starting`, unbilled, for as long as it liked.
      const created = await call('POST', '/v1/deployments', {
        name: 'never-healthy',
        image: 'app:1',
        resources: { cpus: 1 },
        ports: [{ containerPort: 80 }],
        labels: { [FAIL_AT_LABEL]: 'health-checking' },
        healthCheck: { type: 'http', port: 80, intervalSeconds: 1, unhealthyThreshold: 100 },
      })
      assert.equal(created.status, 202, JSON.stringify(created.body))
      const id: string = created.body.id
      const ownerId = created.body.owner
      assert.ok(ownerId)
      await waitFor('starting', async () => (await deployment(id)).status === 'starting')

      // Each start gets the window (600 s) and no more: then it fails and is rolled back, not
      // restarted (the ladder's waits would run it on, unbilled). Starting it again is the
      // owner's call, and each start counts against the budget (2 an hour here).
      const timedOut = async () =>
        (await events(id)).filter((e: { type: string }) => e.type === 'unhealthy') as Array<{
          message: string
        }>
      for (const start of [0, 1, 2]) {
        if (start > 0) {
          assert.equal((await call('POST', `/v1/deployments/${id}/start`)).status, 202)
          await waitFor(`start ${start}`, async () => (await deployment(id)).status === 'starting')
        }
        advance(601 * SECOND)
        await waitFor(`timed out ${start + 1}`, async () => (await timedOut()).length === start + 1)
        await waitFor('failed', async () => (await deployment(id)).status === 'failed')
        await waitFor('rolled back', async () => (await stack.provider.observe(id)) === null)
      }
      assert.match((await timedOut())[0]!.message, /not healthy within 600s of starting/)

      // Restarting in a loop does not buy more: the budget is spent until the window ends.
      for (const intent of ['restart', 'start']) {
        const refused = await call('POST', `/v1/deployments/${id}/${intent}`)
        assert.equal(refused.status, 409, intent)
        assert.match(refused.body.error.message, /restart budget is spent: 2 starts within 3600s/)
      }

      // The ledger: never charged, and the hold of its first interval given back.
      await createBilling({
        database,
        store: stack.store,
        events: stack.events,
        config: stack.config,
        now,
      }).pass()
      const account = (await call('GET', '/v1/balance')).body
      assert.equal(account.availableMicroUsd, '5000000')
      assert.equal(account.heldMicroUsd, '0')
      assert.equal(await bookTotal(database.db, 'revenue'), 0n)
      assert.equal(await bookTotal(database.db, 'operator_payable'), 0n)
      const { total, unbalancedJournals } = await ledgerImbalance(database.db)
      assert.equal(total, 0n)
      assert.deepEqual(unbalancedJournals, [])
      assert.deepEqual(await balanceOf(database.db, (await call('GET', '/v1/auth/me')).body.accountId), {
        available: 5_000_000n,
        held: 0n,
      })

      // Once the window has passed, it may start again: three more starts at most.
      advance(3600 * SECOND)
      assert.equal((await call('POST', `/v1/deployments/${id}/start`)).status, 202)
      await waitFor('starting again', async () => (await deployment(id)).status === 'starting')
    })
  })
}
