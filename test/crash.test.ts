import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { readInstanceTable } from '../src/providers/simulated/journal.ts'
import { createPostgresDatabase } from './helpers/db.ts'
import {
  api,
  crashAtRandomMoments,
  LIFTED_QUOTAS,
  type RunningBerth,
  signIn,
  startBerth,
  untilAnswered,
} from './helpers/server.ts'
import { waitFor } from './helpers/wait.ts'

// kill -9 the control plane at random moments while 200 deployments are created, stopped and
// deleted; after each crash it restarts. Pass: every deployment reaches its desired state, the
// provider holds exactly one instance per replica (none for deleted ones), and every
// deployment's events are numbered 1..n with no gaps.

const DEPLOYMENTS = 200
const CRASHES = 10

interface Deployment {
  id: string
  status: string
  desiredState: string
  spec: { replicas: number }
}

describe('crash recovery (kill -9, PostgreSQL)', () => {
  let server: RunningBerth
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>

  before(async () => {
    database = await createPostgresDatabase()
    server = await startBerth({
      databaseUrl: database.url,
      env: {
        ...LIFTED_QUOTAS,
        BERTH_LOG_LEVEL: 'warn',
        BERTH_RECONCILER__LEASE_SECONDS: '2',
        BERTH_RECONCILER__POLL_INTERVAL_MS: '100',
        BERTH_RECONCILER__RESYNC_SECONDS: '2',
        BERTH_PROVIDERS__SIMULATED__PULL_MS: '20',
        BERTH_PROVIDERS__SIMULATED__CREATE_MS: '20',
        BERTH_PROVIDERS__SIMULATED__START_MS: '20',
      },
    })
  })
  after(async () => {
    await server?.stop()
    await database?.drop()
  })

  it('converges with no duplicates and no gaps after repeated crashes', { timeout: 300_000 }, async () => {
    const { token } = await signIn(server.url)
    const client = () => api(server.url, token)
    // Every request is sent again until the server answers: it is down between a crash and its restart.
    const retry = <T>(what: string, call: () => Promise<{ status: number; body: T }>, ok: number[]) =>
      untilAnswered(what, call, ok, 120_000)

    const ids: string[] = []
    const work = (async () => {
      for (let i = 0; i < DEPLOYMENTS; i++) {
        const spec = { name: `crash-${i}`, image: 'example/app:1', replicas: 1 + (i % 3) }
        // The Idempotency-Key makes a create retried across a crash land exactly once.
        const created = await retry(
          `create ${i}`,
          () => client().post<Deployment>('/v1/deployments', spec, { 'idempotency-key': `crash-${i}` }),
          [202],
        )
        ids.push(created.body.id)
        if (i % 4 === 1)
          await retry(`stop ${i}`, () => client().post(`/v1/deployments/${created.body.id}/stop`), [202])
        if (i % 4 === 2)
          // A delete that landed just before a crash, its answer lost, answers 409 when retried.
          await retry(`delete ${i}`, () => client().del(`/v1/deployments/${created.body.id}`), [202, 409])
      }
    })()

    // A failure shows what the server said, across its restarts.
    work.catch(() => console.error(`berth serve output (tail):\n${server.output().slice(-6000)}`))
    await crashAtRandomMoments(server, {
      crashes: CRASHES,
      total: DEPLOYMENTS,
      done: () => ids.length,
      timeoutMs: 120_000,
    })
    await work
    assert.equal(ids.length, DEPLOYMENTS)
    assert.equal(new Set(ids).size, DEPLOYMENTS, 'no create was duplicated')

    const expected = (i: number) => (i % 4 === 1 ? 'stopped' : i % 4 === 2 ? 'deleted' : 'running')
    await waitFor(
      'every deployment to reach its desired state',
      async () => {
        for (const [i, id] of ids.entries()) {
          const { body } = await client().get<Deployment>(`/v1/deployments/${id}`)
          if (body.status !== expected(i)) return false
        }
        return true
      },
      180_000,
      500,
    )

    const instances = readInstanceTable(join(server.dataDir, 'simulated'))
    for (const [i, id] of ids.entries()) {
      const replicas = [...(instances.get(id)?.values() ?? [])].map((instance) => instance.replica)
      if (expected(i) === 'deleted') {
        assert.equal(replicas.length, 0, `deleted ${id} left instances`)
        continue
      }
      const want = Array.from({ length: 1 + (i % 3) }, (_, r) => r)
      if (expected(i) === 'running') {
        assert.deepEqual(replicas.sort(), want, `${id}: one instance per replica`)
      } else {
        // Stopped, possibly before it was ever deployed: no replica may be there twice.
        assert.equal(new Set(replicas).size, replicas.length, `${id}: a replica is duplicated`)
      }
    }
    const known = new Set(ids)
    const strays = [...instances.keys()].filter((id) => !known.has(id))
    assert.deepEqual(strays, [], 'no instances without a deployment')

    for (const id of ids) {
      const { body } = await client().get<{ items: Array<{ seq: number }> }>(`/v1/deployments/${id}/events`)
      assert.deepEqual(
        body.items.map((e) => e.seq),
        body.items.map((_, k) => k + 1),
        `${id}: events without gaps`,
      )
    }
  })
})
