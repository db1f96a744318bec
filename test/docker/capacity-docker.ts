import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createPostgresDatabase } from '../helpers/db.ts'
import { api, type RunningBerth, signIn, startBerth } from '../helpers/server.ts'
import { waitFor } from '../helpers/wait.ts'
import { type DockerTestEngine, deleteAndWait, onDocker } from './berth-on-docker.ts'

// Capacity admission on the real engine: berth reads the engine's CPUs (docker info) and admits
// starts up to them times providers.docker.overcommit. Here the overcommit makes room for about
// one CPU, whatever this machine has: a second deployment of three quarters of that room waits in
// its queue and starts once the first is deleted. Registered from providers-docker.test.ts.

interface View {
  id: string
  status: string
  waiting?: { reason: string; place?: number }
}

export function dockerCapacityTests(setUp: () => Promise<DockerTestEngine>) {
  describe('capacity admission on docker (e2e)', () => {
    let server: RunningBerth
    let database: Awaited<ReturnType<typeof createPostgresDatabase>>
    let client: ReturnType<typeof api>
    let image: string
    /** What the engine admits at once with the overcommit set below, in CPUs. */
    let room = 1
    const created: string[] = []

    before(async () => {
      const engine = await setUp()
      image = engine.image
      const { NCPU } = (await engine.docker.info()) as { NCPU: number }
      const overcommit = Math.max(0.1, 1 / NCPU)
      room = Math.floor(NCPU * overcommit * 1000) / 1000
      database = await createPostgresDatabase()
      server = await startBerth({
        databaseUrl: database.url,
        env: {
          ...onDocker(engine.socketPath),
          BERTH_PROVIDERS__DOCKER__OVERCOMMIT: String(overcommit),
        },
      })
      client = api(server.url, (await signIn(server.url)).token)
    })
    after(async () => {
      await deleteAndWait(client, created)
      await server?.stop()
      await database?.drop()
    })

    const view = async (id: string) => (await client.get<View>(`/v1/deployments/${id}`)).body
    const create = async (name: string) => {
      const cpus = Math.floor(room * 750) / 1000
      const reply = await client.post<View>('/v1/deployments', { name, image, resources: { cpus } })
      assert.equal(reply.status, 202, JSON.stringify(reply.body))
      created.push(reply.body.id)
      return reply.body.id
    }

    it('runs what fits the engine, queues the rest, and starts it when room frees', async () => {
      const first = await create('first')
      await waitFor('first running', async () => (await view(first)).status === 'running', 30_000)
      const second = await create('second')
      await waitFor('second waiting', async () => (await view(second)).waiting?.place === 1, 30_000)
      assert.equal((await view(second)).status, 'pending')

      const huge = await client.post<{ error: { code: string } }>('/v1/deployments', {
        name: 'huge',
        image,
        resources: { cpus: Math.ceil(room) + 1 },
      })
      assert.equal(huge.status, 422)
      assert.equal(huge.body.error.code, 'provider_rejected')

      assert.equal((await client.del(`/v1/deployments/${first}`)).status, 202)
      await waitFor('second running', async () => (await view(second)).status === 'running', 30_000)
    })
  })
}
