import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { pino } from 'pino'
import { configSchema } from '../src/config/schema.ts'
import { createHttpApp } from '../src/http/app.ts'
import { createMetrics } from '../src/metrics/registry.ts'
import { ProviderRegistry } from '../src/providers/provider.ts'

// /health and /metrics need no session; /metrics can be closed with its own bearer token.

describe('system routes', () => {
  const appWith = (metricsToken?: string) =>
    createHttpApp({
      version: 'test',
      bodyLimitBytes: 1024,
      limits: configSchema.parse({}),
      metricsToken,
      databaseKind: 'pglite',
      pingDatabase: async () => true,
      deployments: {} as never,
      credentials: {} as never,
      registryCredentials: {} as never,
      templates: {} as never,
      providers: new ProviderRegistry('simulated'),
      metrics: createMetrics(async () => []),
      identity: { authenticator: { authenticate: async () => ({ kind: 'admin' }) } } as never,
      quotas: {} as never,
      payments: {} as never,
      notify: {} as never,
      audit: {} as never,
      fleet: { nodes: {} } as never,
      logger: pino({ level: 'silent' }),
    }).app

  it('serves /metrics to anyone when no token is set', async () => {
    const res = await appWith().request('/metrics')
    assert.equal(res.status, 200)
    assert.match(await res.text(), /# TYPE berth_reconcile_steps_total counter/)
  })

  it('serves /metrics only to its bearer token when one is set', async () => {
    const app = appWith('metrics-token-0123456789')
    for (const authorization of [undefined, 'Bearer wrong-token-0123456789', 'Basic bWV0cmljcw==']) {
      const res = await app.request('/metrics', { headers: authorization ? { authorization } : {} })
      assert.equal(res.status, 401, String(authorization))
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'unauthorized')
    }
    const ok = await app.request('/metrics', {
      headers: { authorization: 'Bearer metrics-token-0123456789' },
    })
    assert.equal(ok.status, 200)
    assert.equal((await app.request('/health')).status, 200, '/health stays open')
  })
})
