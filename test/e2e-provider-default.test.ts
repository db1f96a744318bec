import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { api, type RunningBerth, signIn, startBerth } from './helpers/server.ts'

// `berth serve` with docker on `auto` and no engine at the configured address: it starts anyway,
// without a docker provider, and the simulated provider is the default. (The engine-answering
// case is in test/docker/default-provider.ts, run with the docker tests.)

describe('default provider when no engine answers (e2e)', () => {
  let server: RunningBerth
  before(async () => {
    server = await startBerth({
      env: {
        BERTH_PROVIDERS__DEFAULT: '',
        BERTH_PROVIDERS__DOCKER__ENABLED: 'auto',
        BERTH_PROVIDERS__DOCKER__HOST: 'unix:///nonexistent/berth-test/docker.sock',
      },
    })
  })
  after(async () => server?.stop())

  it('offers only the simulated provider, and deploys there by default', async () => {
    const health = await api(server.url).get<{ status: string; providers: Record<string, string> }>('/health')
    assert.deepEqual(health.body.providers, { simulated: 'up', fleet: 'up' })
    assert.equal(health.body.status, 'ok')
    const { token } = await signIn(server.url)
    const created = await api(server.url, token).post<{ provider: string }>('/v1/deployments', {
      name: 'web',
      image: 'example/app:1',
    })
    assert.equal(created.status, 202)
    assert.equal(created.body.provider, 'simulated')
  })

  it('shows an explicitly enabled docker provider as down when no engine answers', async () => {
    // Enabled explicitly (not auto), it is registered without a probe; the default here is the helper's (simulated).
    const explicit = await startBerth({
      env: {
        BERTH_PROVIDERS__DOCKER__ENABLED: 'true',
        BERTH_PROVIDERS__DOCKER__HOST: 'unix:///nonexistent/berth-test/docker.sock',
      },
    })
    try {
      const health = await api(explicit.url).get<{ status: string; providers: Record<string, string> }>(
        '/health',
      )
      assert.deepEqual(health.body.providers, { simulated: 'up', docker: 'down', fleet: 'up' })
      assert.equal(health.body.status, 'degraded')
    } finally {
      await explicit.stop()
    }
  })
})
