import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { serviceNameOf } from '../../src/providers/swarm/labels.ts'
import { api, type RunningBerth, signIn, startBerth } from '../helpers/server.ts'
import { waitFor } from '../helpers/wait.ts'
import { taskContainer } from './hardening.ts'
import { RUN_LABEL, run, SMALL, type SwarmWorld, swarmWorld } from './setup.ts'

// `berth serve` with the swarm provider: a deployment goes running through berth's own probe,
// its endpoint answers, a task killed behind berth's back is restarted by berth's ladder (Swarm
// itself restarts nothing), and a delete leaves nothing on the swarm.

interface Deployment {
  id: string
  status: string
  endpoints?: Array<{ url: string }>
}

export function berthOnSwarmTests(): void {
  describe('berth serve on swarm (e2e)', () => {
    let world: SwarmWorld
    let server: RunningBerth
    let token: string
    before(async () => {
      world = await swarmWorld()
      server = await startBerth({
        env: {
          BERTH_PROVIDERS__DEFAULT: 'swarm',
          // auto: offered because the engine answers as a swarm manager.
          BERTH_PROVIDERS__SWARM__ENABLED: 'auto',
          BERTH_PROVIDERS__SWARM__HOST: `unix://${world.socketPath}`,
          BERTH_PROVIDERS__SWARM__STOP_GRACE_SECONDS: '2',
          // The test image comes from the registry on loopback, a private address.
          BERTH_PROVIDERS__DOCKER__ALLOWED_REGISTRIES: world.registryHost,
          // The sweep would remove other tests' services, which have no row in this database.
          BERTH_RECONCILER__SWEEP_INTERVAL_SECONDS: '86400',
          BERTH_HEALTH__RESTART_LADDER_SECONDS: '0,1',
        },
      })
      ;({ token } = await signIn(server.url))
    })
    after(() => server?.stop())

    it('offers the swarm provider on its own when the engine is a swarm manager', async () => {
      const health = await api(server.url).get<{ providers: Record<string, string> }>('/health')
      assert.equal(health.body.providers.swarm, 'up')
    })

    it('deploys, restarts what was killed behind its back, and deletes', async () => {
      const client = api(server.url, token)
      const created = await client.post<Deployment>('/v1/deployments', {
        name: 'web',
        image: world.image,
        resources: SMALL,
        ports: [{ containerPort: 80 }],
        healthCheck: { type: 'http', port: 80, path: '/', intervalSeconds: 1 },
        labels: { [RUN_LABEL]: run },
      })
      assert.equal(created.status, 202, JSON.stringify(created.body))
      const id = created.body.id
      const view = () => client.get<Deployment>(`/v1/deployments/${id}`).then((r) => r.body)
      const running = await waitFor(
        'running',
        async () => ((await view()).status === 'running' ? view() : null),
        90_000,
        200,
      )
      const url = running.endpoints?.[0]?.url
      assert.ok(url, 'an endpoint')
      assert.equal((await fetch(url)).status, 200)

      await (await taskContainer(world.docker, id)).kill()
      const types = async () =>
        (await client.get<{ items: Array<{ type: string }> }>(`/v1/deployments/${id}/events`)).body.items.map(
          (e) => e.type,
        )
      await waitFor(
        'the exit, then running again',
        async () => (await types()).includes('instance_exited') && (await view()).status === 'running',
        90_000,
        200,
      )
      assert.ok((await types()).includes('restarted'), 'restarted by the ladder')
      const tasks = await world.docker.listTasks({ filters: { service: [serviceNameOf(id, 0)] } })
      assert.equal(tasks.length, 2, "the killed task and the one berth started; none of Swarm's own")

      assert.equal((await client.del(`/v1/deployments/${id}`)).status, 202)
      await waitFor(
        'the services to go',
        async () =>
          (await world.docker.listServices({ filters: { label: [`berth.deployment=${id}`] } })).length === 0,
        60_000,
        200,
      )
    })
  })
}
