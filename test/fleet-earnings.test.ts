import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { systemSource } from '../src/domain/actor.ts'
import { deploymentSpecSchema } from '../src/domain/spec.ts'
import type { Heartbeat } from '../src/fleet/node-schemas.ts'
import { createBalances } from '../src/payments/balances.ts'
import { createBilling } from '../src/payments/billing.ts'
import { createFunding } from '../src/payments/funding.ts'
import { bookTotal, ledgerImbalance, postJournal } from '../src/payments/ledger.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { beat, enrollTestNode, steppingClock, type TestNode } from './helpers/fleet.ts'
import { createTestApp, type TestApp } from './helpers/http-app.ts'
import { testPricing } from './helpers/payments-fixture.ts'
import { createAccount, createStack, type Stack } from './helpers/stack.ts'
import { waitFor } from './helpers/wait.ts'

// What node operators earn from a charged interval: the payable (the charge less the commission)
// shared equally among the deployment's replicas, the first taking the remainder, each share to
// the operator of the replica's node; a node below the minimum uptime over the interval earns
// nothing and its share goes to revenue. Checked by hand against sessions made by real
// heartbeats, then through the ledger and GET /v1/my/nodes/earnings.

for (const kind of databaseKinds) {
  describe(`fleet earnings (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp
    const clock = steppingClock()

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database, { flags: { fleet: { open: true, minUptimePercent: 95 } } })
      app = await createTestApp(database, stack, { now: clock.now })
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    /** A placement (and its span) since `since`, as the scheduler writes them. */
    const place = async (
      deploymentId: string,
      replica: number,
      node: TestNode,
      ownerId: string,
      since: Date,
    ) => {
      await database.query(
        `insert into fleet_placements (deployment_id, replica, node_id, owner_id, milli_cpus, memory_mb, disk_mb, placed_at, reason)
         values ($1, $2, $3, $4, 1000, 256, 100, $5, 'test')`,
        [deploymentId, replica, node.nodeId, ownerId, since],
      )
      await database.query(
        'insert into fleet_placement_spans (deployment_id, replica, node_id, started_at) values ($1, $2, $3, $4)',
        [deploymentId, replica, node.nodeId, since],
      )
    }

    it('shares the payable among the replicas’ operators, and a node with low uptime forfeits its share', async () => {
      const keyA = generatePrivateKey()
      const keyB = generatePrivateKey()
      const steady = await enrollTestNode(app, { walletKey: keyA, name: 'steady' })
      const late = await enrollTestNode(app, { walletKey: keyB, name: 'late' })
      // steady beats five times, a second apart: one session from its first to its fifth beat.
      const beats: Date[] = []
      for (let seq = 1; seq <= 5; seq++) {
        const at = clock.step()
        beats.push(at)
        assert.equal((await beat(app, steady, seq, at)).status, 204)
      }
      // late is first heard a second after steady's last beat.
      const lateAt = clock.step()
      assert.equal((await beat(app, late, 1, lateAt)).status, 204)

      // The interval: from steady's first beat to 5 s after its last. steady counts as up until one
      // heartbeat interval (10 s) after its last beat: 100%. late is up from its beat on: 4 s of 9 s.
      const from = beats[0]!
      const to = new Date(beats[4]!.getTime() + 5000)
      const tenantId = await createAccount(database, `0x${'c3'.repeat(20)}`)
      const deploymentId = randomUUID()
      const since = new Date(from.getTime() - 60_000)
      await place(deploymentId, 0, steady, tenantId, since)
      await place(deploymentId, 1, late, tenantId, since)
      await place(deploymentId, 2, steady, tenantId, since)

      const payable = 1_000_001n
      await database.db.transaction(async (tx) => {
        const legs = await app.fleet.earnings.payableLegs(tx, deploymentId, from, to, payable)
        assert.deepEqual(
          legs?.map((l) => [l.book, l.nodeId, l.amount]),
          [
            ['operator_payable', steady.nodeId, 333_335n],
            ['revenue', late.nodeId, 333_333n],
            ['operator_payable', steady.nodeId, 333_333n],
          ],
        )
        assert.equal(
          legs!.reduce((sum, l) => sum + l.amount, 0n),
          payable,
          'the shares add up to the whole payable',
        )
        await postJournal(tx, {
          cause: 'charge',
          memo: 'one interval',
          legs: [{ book: 'available', accountId: tenantId, amount: -payable }, ...legs!],
        })
      })
      assert.equal((await ledgerImbalance(database.db)).total, 0n)
      // Charged late (the deployment has left its nodes since): the same nodes are owed it.
      await app.fleet.scheduler.release(deploymentId)
      await database.db.transaction(async (tx) => {
        const afterwards = await app.fleet.earnings.payableLegs(tx, deploymentId, from, to, payable)
        assert.deepEqual(
          afterwards?.map((l) => [l.book, l.nodeId]),
          [
            ['operator_payable', steady.nodeId],
            ['revenue', late.nodeId],
            ['operator_payable', steady.nodeId],
          ],
        )
      })
      // A replica that moved during the interval is one share, for the node that held it longest.
      const moved = randomUUID()
      const handover = new Date(from.getTime() + 2000)
      await database.query(
        `insert into fleet_placement_spans (deployment_id, replica, node_id, started_at, ended_at)
         values ($1, 0, $2, $3, $4), ($1, 0, $5, $4, null)`,
        [moved, late.nodeId, since, handover, steady.nodeId],
      )
      await database.db.transaction(async (tx) => {
        const legs = await app.fleet.earnings.payableLegs(tx, moved, from, to, 1000n)
        assert.deepEqual(
          legs?.map((l) => [l.book, l.nodeId, l.amount]),
          [['operator_payable', steady.nodeId, 1000n]],
        )
      })
      // Nothing placed: nobody in particular is owed it.
      await database.db.transaction(async (tx) => {
        assert.equal(await app.fleet.earnings.payableLegs(tx, randomUUID(), from, to, payable), null)
      })

      const addressOf = (key: `0x${string}`) => privateKeyToAccount(key).address.toLowerCase()
      const ofA = await (await app.session(addressOf(keyA)))('GET', '/v1/my/nodes/earnings')
      assert.equal(ofA.status, 200, JSON.stringify(ofA.body))
      assert.deepEqual(ofA.body, {
        payableMicroUsd: '666668',
        nodes: [
          {
            id: steady.nodeId,
            name: 'steady',
            earnedMicroUsd: '666668',
            forfeitedMicroUsd: '0',
            intervalsEarned: 1,
            intervalsForfeited: 0,
          },
        ],
      })
      const ofB = await (await app.session(addressOf(keyB)))('GET', '/v1/my/nodes/earnings')
      assert.deepEqual(ofB.body, {
        payableMicroUsd: '0',
        nodes: [
          {
            id: late.nodeId,
            name: 'late',
            earnedMicroUsd: '0',
            forfeitedMicroUsd: '333333',
            intervalsEarned: 0,
            intervalsForfeited: 1,
          },
        ],
      })
    })
  })
}

for (const kind of databaseKinds) {
  describe(`fleet earnings through billing (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp
    let clock = new Date('2026-03-01T00:00:00Z')
    const now = () => clock
    const later = (ms: number) => {
      clock = new Date(clock.getTime() + ms)
      return clock
    }
    const payments = {
      required: true,
      commissionPercent: 10,
      gracePeriodSeconds: 1800,
      lowBalanceWarningMicroUsd: 0,
    }
    const accountIdOf = async (address: string) =>
      (await database.query<{ id: string }>('select id from accounts where address = $1', [address]))[0]!.id

    before(async () => {
      database = await openTestDatabase(kind)
      const flags = { payments, pricing: testPricing, fleet: { open: true, minUptimePercent: 95 } }
      const funding = createFunding(database, {
        payments: { ...payments, quoteTtlSeconds: 900 },
        pricing: testPricing,
      })
      stack = await createStack(database, { flags, now, funding })
      app = await createTestApp(database, stack, { now })
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    it('credits the node operator with the charge less the commission for an interval its node was up', async () => {
      const operatorKey = generatePrivateKey()
      const node = await enrollTestNode(app, { walletKey: operatorKey, name: 'earner' })
      let seq = 0
      const report = (instances: Heartbeat['instances'] = []) =>
        beat(app, node, ++seq, later(1000), instances)
      // A new node proves itself for most of an hour before it passes the minimum uptime.
      for (let i = 0; i < 4; i++) {
        assert.equal((await report()).status, 204)
        later(20 * 60_000)
      }
      assert.equal((await report()).status, 204)

      const tenant = `0x${'d4'.repeat(20)}`
      await createBalances(database).credit(tenant, 5_000_000n, 'top-up', 'grant', systemSource('test'))
      const ownerId = await accountIdOf(tenant)
      const spec = deploymentSpecSchema.parse({
        name: 'paid',
        image: 'app:1',
        provider: 'fleet',
        resources: { cpus: 1 },
      })
      const { row } = await stack.store.create({
        source: systemSource('test'),
        ownerId,
        spec,
        provider: 'fleet',
      })
      const statusOf = async () =>
        (
          await database.query<{ status: string }>('select status from deployments where id = $1', [row.id])
        )[0]!.status
      await waitFor('placed', async () => (await statusOf()) === 'deploying')
      assert.equal(
        (await report([{ deploymentId: row.id, replica: 0, generation: 0, state: 'running' }])).status,
        204,
      )
      await waitFor('running', async () => (await statusOf()) === 'running')

      // The node is heard every twenty minutes through the hour (within the session gap): up throughout.
      for (let i = 0; i < 3; i++) {
        later(20 * 60_000)
        assert.equal(
          (await report([{ deploymentId: row.id, replica: 0, generation: 0, state: 'running' }])).status,
          204,
        )
      }
      const billing = createBilling({
        database,
        store: stack.store,
        events: stack.events,
        config: stack.config,
        now,
        payableLegs: app.fleet.earnings.payableLegs,
      })
      assert.equal((await billing.pass()).charged, 1)
      const operatorId = await accountIdOf(privateKeyToAccount(operatorKey).address.toLowerCase())
      const earned = await app.fleet.earnings.of(operatorId)
      assert.equal(earned.payableMicroUsd, '900000', 'one CPU-hour at $1, less the 10% commission')
      assert.equal(earned.nodes[0]?.intervalsEarned, 1)
      assert.equal(await bookTotal(database.db, 'revenue'), 100_000n)
      assert.equal((await ledgerImbalance(database.db)).total, 0n)
    })
  })
}
