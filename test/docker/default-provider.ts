import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type Docker from 'dockerode'
import { LABEL } from '../../src/providers/docker/labels.ts'
import { api, type RunningBerth, signIn, startBerth } from '../helpers/server.ts'
import { waitFor } from '../helpers/wait.ts'

// `berth serve` with an engine answering and no default provider configured: docker is offered,
// shown on /health, and is the default. Registered from providers-docker.test.ts, which owns the
// engine's lifetime.

interface Deployment {
  provider: string
  status: string
  endpoints: Array<{ url: string }>
}

export function dockerDefaultProviderTests(
  setUp: () => Promise<{ docker: Docker; image: string; socketPath: string }>,
) {
  describe('docker as the default provider when an engine answers (e2e)', () => {
    let server: RunningBerth
    let docker: Docker
    let image: string
    before(async () => {
      const ready = await setUp()
      ;({ docker, image } = ready)
      server = await startBerth({
        env: {
          // Empty means unset: the test helper's own default (simulated) must not apply here.
          BERTH_PROVIDERS__DEFAULT: '',
          BERTH_PROVIDERS__DOCKER__ENABLED: 'auto',
          BERTH_PROVIDERS__DOCKER__HOST: `unix://${ready.socketPath}`,
          // Its sweep must not remove the other docker tests' containers (they have no row here).
          BERTH_RECONCILER__SWEEP_INTERVAL_SECONDS: '86400',
        },
      })
    })
    after(async () => server?.stop())

    it('lists docker as up and deploys there by default, on a port from the range', async () => {
      const health = await api(server.url).get<{ providers: Record<string, string> }>('/health')
      assert.deepEqual(health.body.providers, { simulated: 'up', docker: 'up', fleet: 'up' })

      const { token } = await signIn(server.url)
      const client = api(server.url, token)
      const created = await client.post<{ id: string }>('/v1/deployments', {
        name: 'web',
        image,
        ports: [{ containerPort: 80 }],
      })
      assert.equal(created.status, 202, JSON.stringify(created.body))
      const id = created.body.id
      try {
        const running = await waitFor('the deployment running', async () => {
          const d = (await client.get<Deployment>(`/v1/deployments/${id}`)).body
          return d.status === 'running' ? d : undefined
        })
        assert.equal(running.provider, 'docker')
        const port = Number(new URL(running.endpoints[0]!.url).port)
        assert.ok(port >= 19000 && port <= 29000, `${port} is in the default range`)
        const containers = () =>
          docker.listContainers({ all: true, filters: { label: [`${LABEL.deployment}=${id}`] } })
        assert.equal((await containers()).length, 1)
      } finally {
        assert.equal((await client.del(`/v1/deployments/${id}`)).status, 202)
        await waitFor('the containers removed', async () => {
          const left = await docker.listContainers({
            all: true,
            filters: { label: [`${LABEL.deployment}=${id}`] },
          })
          return left.length === 0
        })
      }
    })
  })
}
