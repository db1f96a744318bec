import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type Docker from 'dockerode'
import { LABEL } from '../../src/providers/docker/labels.ts'
import { createPostgresDatabase } from '../helpers/db.ts'
import {
  api,
  crashAtRandomMoments,
  LIFTED_QUOTAS,
  type RunningBerth,
  signIn,
  startBerth,
  untilAnswered,
} from '../helpers/server.ts'
import { waitFor } from '../helpers/wait.ts'

// kill -9 `berth serve` on docker while 50 deployments are created (and some deleted), five
// times, restarting it each time. Pass: every deployment reaches its desired state, the engine
// holds exactly one container per replica of each running deployment and none of the deleted
// ones, nothing else of this owner, and no host port twice. Registered from providers-docker.test.ts.

const DEPLOYMENTS = 50
const CRASHES = 5

interface Deployment {
  id: string
  status: string
  endpoints: Array<{ url: string }>
}

export function dockerCrashTests(
  setUp: () => Promise<{ docker: Docker; image: string; socketPath: string }>,
) {
  describe('crash recovery on docker (kill -9, PostgreSQL)', () => {
    let server: RunningBerth
    let database: Awaited<ReturnType<typeof createPostgresDatabase>>
    let docker: Docker
    let image: string
    const ids: string[] = []

    before(async () => {
      const ready = await setUp()
      ;({ docker, image } = ready)
      database = await createPostgresDatabase()
      server = await startBerth({
        databaseUrl: database.url,
        dockerSocket: ready.socketPath,
        env: {
          ...LIFTED_QUOTAS,
          BERTH_LOG_LEVEL: 'warn',
          BERTH_RECONCILER__LEASE_SECONDS: '2',
          BERTH_RECONCILER__POLL_INTERVAL_MS: '200',
          BERTH_RECONCILER__RESYNC_SECONDS: '5',
          BERTH_PROVIDERS__DOCKER__STOP_GRACE_SECONDS: '1',
          // Fifty idle test workloads ask for far more CPU than they use: all are let in at once.
          BERTH_PROVIDERS__DOCKER__OVERCOMMIT: '100',
        },
      })
    })
    after(async () => {
      // The server first, or its reconciler would bring back what is removed below. Then, whatever
      // the outcome, leave no container behind: remove this run's by deployment label.
      await server?.stop()
      const known = new Set(ids)
      const left = await docker.listContainers({ all: true, filters: { label: [`${LABEL.managed}=true`] } })
      await Promise.all(
        left
          .filter((c) => known.has(c.Labels[LABEL.deployment] ?? ''))
          .map((c) =>
            docker
              .getContainer(c.Id)
              .remove({ force: true, v: true })
              .catch(() => {}),
          ),
      )
      await database?.drop()
    })

    it('converges with one container per replica, no orphans and unique host ports', {
      // Bounded, but generous: the engine here has taken from 80 to well over 100 s for it alone.
      timeout: 300_000,
    }, async () => {
      const { token } = await signIn(server.url)
      const client = () => api(server.url, token)
      const retry = <T>(what: string, call: () => Promise<{ status: number; body: T }>, ok: number[]) =>
        untilAnswered(what, call, ok, 60_000)
      const replicasOf = (i: number) => 1 + (i % 2)
      const deleted = (i: number) => i % 5 === 4

      const work = (async () => {
        for (let i = 0; i < DEPLOYMENTS; i++) {
          const spec = { name: `crash-${i}`, image, replicas: replicasOf(i), ports: [{ containerPort: 80 }] }
          const created = await retry(
            `create ${i}`,
            () =>
              client().post<Deployment>('/v1/deployments', spec, { 'idempotency-key': `docker-crash-${i}` }),
            [202],
          )
          ids.push(created.body.id)
          if (deleted(i))
            // A delete that landed just before a crash, its answer lost, answers 409 when retried.
            await retry(`delete ${i}`, () => client().del(`/v1/deployments/${created.body.id}`), [202, 409])
        }
      })()

      await crashAtRandomMoments(server, {
        crashes: CRASHES,
        total: DEPLOYMENTS,
        done: () => ids.length,
        timeoutMs: 60_000,
      })
      await work
      assert.equal(new Set(ids).size, DEPLOYMENTS)

      const expected = (i: number) => (deleted(i) ? 'deleted' : 'running')
      await waitFor(
        'every deployment in its desired state',
        async () => {
          for (const [i, id] of ids.entries()) {
            const { body } = await client().get<Deployment>(`/v1/deployments/${id}`)
            if (body.status !== expected(i)) return false
          }
          return true
        },
        120_000,
        500,
      )

      const owners = new Set<string>()
      const hostPorts: number[] = []
      for (const [i, id] of ids.entries()) {
        const containers = await docker.listContainers({
          all: true,
          filters: { label: [`${LABEL.deployment}=${id}`] },
        })
        if (deleted(i)) {
          assert.equal(containers.length, 0, `deleted ${id} left containers`)
          continue
        }
        const replicas = containers.map((c) => Number(c.Labels[LABEL.replica])).sort()
        assert.deepEqual(
          replicas,
          Array.from({ length: replicasOf(i) }, (_, r) => r),
          `${id}: one per replica`,
        )
        for (const c of containers) {
          assert.equal(c.State, 'running', `${id}: ${c.Names[0]} runs`)
          owners.add(c.Labels[LABEL.owner]!)
          for (const p of c.Ports) if (p.PublicPort) hostPorts.push(p.PublicPort)
        }
        const { body } = await client().get<Deployment>(`/v1/deployments/${id}`)
        assert.equal(body.endpoints.length, replicasOf(i))
      }
      assert.equal(owners.size, 1)
      const known = new Set(ids)
      const ofOwner = await docker.listContainers({
        all: true,
        filters: { label: [`${LABEL.owner}=${[...owners][0]}`] },
      })
      const orphans = ofOwner.filter((c) => !known.has(c.Labels[LABEL.deployment] ?? ''))
      assert.deepEqual(
        orphans.map((c) => c.Names[0]),
        [],
        'no containers without a deployment',
      )
      assert.equal(new Set(hostPorts).size, hostPorts.length, 'no host port is published twice')
      const replicasRunning = ids.reduce((n, _, i) => n + (deleted(i) ? 0 : replicasOf(i)), 0)
      assert.equal(hostPorts.length, replicasRunning, 'each running replica publishes its port')
    })
  })
}
