import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { eq, sql } from 'drizzle-orm'
import type { DeploymentRow } from '../src/db/deployment-rows.ts'
import { deploymentEvents, deployments } from '../src/db/schema/index.ts'
import { systemSource } from '../src/domain/actor.ts'
import { LeaseLostError } from '../src/domain/errors.ts'
import { type DeploymentSpec, deploymentSpecSchema } from '../src/domain/spec.ts'
import { FAIL_AT_LABEL } from '../src/providers/simulated/simulated-provider.ts'
import { auditOf } from './helpers/audit.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { createAccount, createStack, type Stack } from './helpers/stack.ts'
import { waitFor } from './helpers/wait.ts'

const spec = (name: string, extra: Partial<DeploymentSpec> = {}): DeploymentSpec =>
  deploymentSpecSchema.parse({ name, image: 'example/app:1', ...extra })

for (const kind of databaseKinds) {
  describe(`reconciler (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let owner: string

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database, {
        flags: {
          health: {
            restartLadderSeconds: [0],
            maxRestarts: 2,
            restartWindowSeconds: 600,
            ladderResetSeconds: 600,
          },
        },
      })
      owner = await createAccount(database)
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    const statusOf = async (id: string) => (await stack.store.get(owner, id)).status
    const until = (id: string, status: string) =>
      waitFor(`${id} to be ${status}`, async () => (await statusOf(id)) === status)
    const eventsOf = async (id: string) => stack.events.list(id, 0, 1000)

    it('takes a new deployment through every stage to running, with gapless events', async () => {
      const { row } = await stack.store.create({
        source: systemSource('test'),
        ownerId: owner,
        spec: spec('web', { replicas: 2 }),
        provider: 'simulated',
      })
      await until(row.id, 'running')
      const events = await eventsOf(row.id)
      assert.deepEqual(
        events.map((e) => e.seq),
        events.map((_, i) => i + 1),
      )
      assert.deepEqual(
        events.filter((e) => e.status).map((e) => e.status),
        ['pending', 'scheduled', 'deploying', 'starting', 'running'],
      )
      const stages = events.map((e) => e.stage).filter(Boolean)
      assert.deepEqual(stages, [
        'queued',
        'scheduling',
        'pulling',
        'creating',
        'starting',
        'health-checking',
        'running',
      ])
      const observed = await stack.provider.observe(row.id)
      assert.equal(observed?.instances.length, 2)
      const current = await stack.store.get(owner, row.id)
      assert.equal(current.percent, 100)
      assert.ok(current.runningSince)
    })

    it('stops, starts, restarts and deletes on request', async () => {
      const { row } = await stack.store.create({
        source: systemSource('test'),
        ownerId: owner,
        spec: spec('cycle'),
        provider: 'simulated',
      })
      await until(row.id, 'running')
      await stack.store.requestIntent(owner, row.id, 'stop', { source: systemSource('test') })
      await until(row.id, 'stopped')
      assert.equal((await stack.store.get(owner, row.id)).stopReason, 'user')
      assert.equal((await stack.provider.observe(row.id))?.instances[0]?.state, 'stopped')

      await stack.store.requestIntent(owner, row.id, 'start', { source: systemSource('test') })
      await until(row.id, 'running')
      const startedAt = (await stack.provider.observe(row.id))?.instances[0]?.startedAt
      await stack.store.requestIntent(owner, row.id, 'restart', { source: systemSource('test') })
      await waitFor('a restarted instance', async () => {
        const instance = (await stack.provider.observe(row.id))?.instances[0]
        return instance?.startedAt && startedAt && instance.startedAt > startedAt
      })
      await until(row.id, 'running')

      await stack.store.requestIntent(owner, row.id, 'delete', { source: systemSource('test') })
      await until(row.id, 'deleted')
      assert.equal(await stack.provider.observe(row.id), null)
      await assert.rejects(
        stack.store.requestIntent(owner, row.id, 'start', { source: systemSource('test') }),
        /deleted/,
      )
    })

    it('fails a deployment whose provider step fails permanently, with the reason', async () => {
      const { row } = await stack.store.create({
        source: systemSource('test'),
        ownerId: owner,
        spec: spec('broken', { labels: { [FAIL_AT_LABEL]: 'creating' } }),
        provider: 'simulated',
      })
      await until(row.id, 'failed')
      const failed = await stack.store.get(owner, row.id)
      assert.equal(failed.stopReason, 'failed')
      assert.match(failed.error ?? '', /creating/)
      assert.ok((await eventsOf(row.id)).some((e) => e.type === 'creating_failed'))
      // The owner's audit log says berth failed it (which reconciler), and why.
      const failure = (await auditOf(database, owner)).find((e) => e.action === 'deployment.failed')
      assert.equal(failure?.target, `deployment:${row.id}`)
      assert.equal(failure?.actor.type, 'system')
      assert.match(failure?.actor.id ?? '', /^reconciler-/)
      assert.match(String(failure?.detail?.error), /creating/)

      // Started again, it fails again at once, instead of retrying a permanent failure forever.
      await stack.store.requestIntent(owner, row.id, 'start', { source: systemSource('test') })
      await waitFor(
        'a second failure',
        async () => (await eventsOf(row.id)).filter((e) => e.type === 'creating_failed').length === 2,
      )
      await until(row.id, 'failed')
      const statuses = (await eventsOf(row.id)).map((e) => e.status).filter(Boolean)
      assert.deepEqual(statuses.slice(-4), ['failed', 'scheduled', 'deploying', 'failed'])
      assert.ok(!(await eventsOf(row.id)).some((e) => e.type === 'reconcile_error'))
    })

    it('restarts an unhealthy deployment and fails it once the restart budget is spent', async () => {
      const { row } = await stack.store.create({
        source: systemSource('test'),
        ownerId: owner,
        spec: spec('sick', { labels: { [FAIL_AT_LABEL]: 'health-checking' } }),
        provider: 'simulated',
      })
      await until(row.id, 'failed')
      const events = await eventsOf(row.id)
      assert.equal(events.filter((e) => e.type === 'restarted').length, 2)
      assert.ok(
        !events.some((e) => e.status === 'running'),
        'an unhealthy deployment never counts as running',
      )
      assert.match((await stack.store.get(owner, row.id)).error ?? '', /restart budget/)
    })

    it('re-applies a deployment whose instance vanished', async () => {
      const { row } = await stack.store.create({
        source: systemSource('test'),
        ownerId: owner,
        spec: spec('vanish'),
        provider: 'simulated',
      })
      await until(row.id, 'running')
      await stack.provider.remove(row.id)
      await waitFor(
        'the instance to come back',
        async () => (await stack.provider.observe(row.id))?.instances.length === 1,
      )
      await until(row.id, 'running')
      assert.ok((await eventsOf(row.id)).some((e) => e.type === 'instance_lost'))
    })

    it('refuses writes from a holder whose lease has passed (fencing)', async () => {
      const paused = await createStack(database, { start: false })
      try {
        const { row } = await paused.store.create({
          source: systemSource('test'),
          ownerId: owner,
          spec: spec('fenced'),
          provider: 'simulated',
        })
        const claimedByA = await claimExactly(paused, 'holder-a', row.id)
        // A's lease runs out (as if it stalled) and B claims the row.
        await database.db
          .update(deployments)
          .set({ leaseExpiresAt: sql`now() - interval '1 second'` })
          .where(eq(deployments.id, row.id))
        await database.db
          .update(deployments)
          .set({ nextReconcileAt: sql`now()` })
          .where(eq(deployments.id, row.id))
        const claimedByB = await claimExactly(paused, 'holder-b', row.id)
        assert.ok(claimedByB.leaseToken > claimedByA.leaseToken)
        const before = await eventsOf(row.id)
        await assert.rejects(
          paused.store.write(
            claimedByA,
            { owner: 'holder-a', token: claimedByA.leaseToken },
            {
              patch: { status: 'failed' },
              events: [{ type: 'stale' }],
            },
          ),
          LeaseLostError,
        )
        assert.equal((await eventsOf(row.id)).length, before.length, 'the stale write left no event')
        await paused.store.write(
          claimedByB,
          { owner: 'holder-b', token: claimedByB.leaseToken },
          {
            events: [{ type: 'fresh' }],
            nextInMs: 0,
          },
        )
        assert.equal((await eventsOf(row.id)).at(-1)?.type, 'fresh')
      } finally {
        await paused.stop()
      }
    })

    it('keeps a deployment due when it was marked due or asked to stop while a step held it', async () => {
      const paused = await createStack(database, { start: false })
      try {
        const dueInSeconds = async (id: string) => {
          const [row] = await database.db
            .select({ next: deployments.nextReconcileAt })
            .from(deployments)
            .where(eq(deployments.id, id))
          return (row!.next.getTime() - Date.now()) / 1000
        }
        const stepWithLongDelay = async (id: string, meanwhile: () => Promise<unknown>) => {
          const claimed = await claimExactly(paused, 'holder', id)
          await meanwhile()
          await paused.store.write(
            claimed,
            { owner: 'holder', token: claimed.leaseToken },
            { nextInMs: 600_000 },
          )
          return dueInSeconds(id)
        }
        const { row: quiet } = await paused.store.create({
          source: systemSource('test'),
          ownerId: owner,
          spec: spec('quiet'),
          provider: 'simulated',
        })
        assert.ok(
          (await stepWithLongDelay(quiet.id, async () => {})) > 500,
          'nothing happened: the delay holds',
        )

        const { row: marked } = await paused.store.create({
          source: systemSource('test'),
          ownerId: owner,
          spec: spec('marked'),
          provider: 'simulated',
        })
        await database.db.update(deployments).set({ status: 'running' }).where(eq(deployments.id, marked.id))
        assert.ok(
          (await stepWithLongDelay(marked.id, () => paused.store.markDue([marked.id]))) < 5,
          'the mark-due wins',
        )

        const { row: stopped } = await paused.store.create({
          source: systemSource('test'),
          ownerId: owner,
          spec: spec('stopped'),
          provider: 'simulated',
        })
        assert.ok(
          (await stepWithLongDelay(stopped.id, () =>
            paused.store.requestIntent(owner, stopped.id, 'stop', { source: systemSource('test') }),
          )) < 5,
          'the stop wins',
        )
      } finally {
        await paused.stop()
      }
    })

    async function claimExactly(s: Stack, worker: string, id: string): Promise<DeploymentRow> {
      return waitFor(`${worker} to claim ${id}`, async () => {
        const rows = await s.store.claimDue(worker, 100, 30)
        // Release anything else this claim picked up so the live reconciler can continue.
        for (const other of rows.filter((r) => r.id !== id)) {
          await s.store.write(other, { owner: worker, token: other.leaseToken }, { nextInMs: 0 })
        }
        return rows.find((r) => r.id === id)
      })
    }

    it('never lets two reconcilers act on one deployment at once', async () => {
      const second = await createStack(database, { stateDir: stack.stateDir })
      try {
        // All at once (one batch): forty due together are more than either reconciler takes in one
        // claim, so both have work, rather than the one beside the creates taking each as it comes.
        const created = await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            stack.store.create({
              source: systemSource('test'),
              ownerId: owner,
              spec: spec(`pair-${i}`),
              provider: 'simulated',
            }),
          ),
        )
        const ids = created.map(({ row }) => row.id)
        for (const id of ids) await until(id, 'running')
        const events = await database.db
          .select()
          .from(deploymentEvents)
          .where(
            sql`${deploymentEvents.deploymentId} in ${ids} and ${deploymentEvents.leaseToken} is not null`,
          )
        const holderOfToken = new Map<string, string>()
        for (const event of events) {
          const key = `${event.deploymentId}/${event.leaseToken}`
          const holder = holderOfToken.get(key)
          assert.ok(!holder || holder === event.actor, `token ${key} used by ${holder} and ${event.actor}`)
          holderOfToken.set(key, event.actor!)
        }
        for (const id of ids) {
          const ordered = events.filter((e) => e.deploymentId === id).sort((a, b) => a.seq - b.seq)
          for (let i = 1; i < ordered.length; i++) {
            assert.ok(ordered[i]!.leaseToken! >= ordered[i - 1]!.leaseToken!, 'fencing tokens only grow')
          }
          assert.equal((await stack.provider.observe(id))?.instances.length, 1, 'exactly one instance')
        }
        if (kind === 'postgres') {
          const actors = new Set(events.map((e) => e.actor))
          assert.ok(actors.size >= 2, 'both reconcilers took part')
        }
      } finally {
        await second.stop()
      }
    })
  })
}
