import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type Docker from 'dockerode'
import { systemSource } from '../../src/domain/actor.ts'
import { type DeploymentSpecInput, deploymentSpecSchema } from '../../src/domain/spec.ts'
import type { createDockerProvider } from '../../src/providers/docker/docker-provider.ts'
import { LABEL } from '../../src/providers/docker/labels.ts'
import type { Provider } from '../../src/providers/provider.ts'
import { openTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { createAccount, createStack, type Stack } from '../helpers/stack.ts'
import { waitFor } from '../helpers/wait.ts'

// The reconciler driving the real engine: control-plane health probes against published ports,
// the restart ladder and budget. Registered from providers-docker.test.ts, which owns the engine.

export interface ReconcileDockerDeps {
  setUp(): Promise<{ docker: Docker; image: string }>
  newProvider(options?: Parameters<typeof createDockerProvider>[0]): Promise<Provider>
}

export function dockerReconcileTests(deps: ReconcileDockerDeps): void {
  describe('reconciler on docker: health probes', () => {
    let database: TestDatabase
    let stack: Stack
    let owner: string
    let image: string
    let docker: Docker

    before(async () => {
      ;({ image, docker } = await deps.setUp())
      database = await openTestDatabase('pglite')
      stack = await createStack(database, {
        provider: await deps.newProvider(),
        flags: { health: { restartLadderSeconds: [0], maxRestarts: 2, restartWindowSeconds: 600 } },
      })
      owner = await createAccount(database)
    })
    after(async () => {
      await stack?.stop()
      await database?.dispose()
    })

    const create = async (spec: Partial<DeploymentSpecInput>) =>
      (
        await stack.store.create({
          source: systemSource('test'),
          ownerId: owner,
          spec: deploymentSpecSchema.parse({ name: `d${randomUUID().slice(0, 8)}`, image, ...spec }),
          provider: 'docker',
        })
      ).row.id
    const rowOf = (id: string) => stack.store.get(owner, id)
    const eventsOf = (id: string) => stack.events.list(id, 0, 1000)

    it('turns running once TCP and HTTP probes pass on every replica', async () => {
      const ids = [
        await create({
          replicas: 2,
          ports: [{ containerPort: 80 }],
          healthCheck: { type: 'tcp', port: 80, intervalSeconds: 1 },
        }),
        await create({
          ports: [{ containerPort: 80 }],
          healthCheck: { type: 'http', port: 80, path: '/index.html', intervalSeconds: 1 },
        }),
      ]
      for (const id of ids) {
        await waitFor(`${id} running`, async () => (await rowOf(id)).status === 'running', 30_000).catch(
          async (error: Error) => {
            const events = (await eventsOf(id)).map((e) => `${e.type} ${e.status ?? ''} ${e.message ?? ''}`)
            throw new Error(`${error.message}; events:\n${events.join('\n')}`)
          },
        )
        const statuses = (await eventsOf(id)).map((e) => e.status).filter(Boolean)
        assert.deepEqual(statuses.slice(-2), ['starting', 'running'])
      }
    })

    it('restarts a workload whose HTTP check fails, then fails it once the budget is spent', async () => {
      const id = await create({
        ports: [{ containerPort: 80 }],
        healthCheck: {
          type: 'http',
          port: 80,
          path: '/missing',
          intervalSeconds: 1,
          timeoutSeconds: 1,
          unhealthyThreshold: 1,
        },
      })
      const failed = await waitFor(
        'the deployment failed',
        async () => {
          const row = await rowOf(id)
          return row.status === 'failed' ? row : undefined
        },
        60_000,
      )
      assert.match(failed.error ?? '', /restart budget spent: 2 restarts/)
      const events = await eventsOf(id)
      assert.equal(events.filter((e) => e.type === 'restarted').length, 2)
      assert.ok(events.some((e) => e.status === 'unhealthy' && /answered 404/.test(e.message ?? '')))
      assert.ok(!events.some((e) => e.status === 'running'), 'a failing check never counts as running')
      // Rolled back: what failed holds no container (and so no host port) any more.
      await waitFor('its containers removed', async () => {
        const left = await docker.listContainers({
          all: true,
          filters: { label: [`${LABEL.deployment}=${id}`] },
        })
        return left.length === 0
      })
      assert.equal(await stack.provider.observe(id), null)
    })
  })
}

export function dockerEventTests(deps: ReconcileDockerDeps): void {
  describe('reconciler on docker: the engine event stream', () => {
    let database: TestDatabase
    let stack: Stack
    let owner: string
    let image: string
    let docker: Docker

    before(async () => {
      ;({ image, docker } = await deps.setUp())
      database = await openTestDatabase('pglite')
      stack = await createStack(database, {
        provider: await deps.newProvider(),
        // Polling and resyncs far beyond the test's time: only the event stream can explain a
        // prompt restart.
        flags: {
          reconciler: { pollIntervalMs: 600_000, resyncSeconds: 3600 },
          health: { restartLadderSeconds: [0], maxRestarts: 5 },
        },
      })
      owner = await createAccount(database)
    })
    after(async () => {
      await stack?.stop()
      await database?.dispose()
    })

    it('restarts a container killed outside berth within seconds, through the event stream', async () => {
      const { row } = await stack.store.create({
        source: systemSource('test'),
        ownerId: owner,
        spec: deploymentSpecSchema.parse({ name: 'killed', image }),
        provider: 'docker',
      })
      const id = row.id
      await waitFor('running', async () => (await stack.store.get(owner, id)).status === 'running', 30_000)
      const [container] = await docker.listContainers({ filters: { label: [`berth.deployment=${id}`] } })
      await docker.getContainer(container!.Id).kill()
      await waitFor(
        'the killed container restarted and the deployment running again',
        async () => {
          const events = await stack.events.list(id, 0, 1000)
          const current = await stack.store.get(owner, id)
          return events.some((e) => e.type === 'instance_exited') && current.status === 'running'
        },
        30_000,
      )
      const info = await docker.getContainer(container!.Id).inspect()
      assert.equal(info.State.Running, true, 'the same container runs again (restarted, not recreated)')
      const events = await stack.events.list(id, 0, 1000)
      assert.equal(events.filter((e) => e.type === 'restarted').length, 1)
    })
  })
}
