import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Webhook } from 'standardwebhooks'
import {
  api,
  LIFTED_QUOTAS,
  type RunningBerth,
  signIn,
  startBerthOnPostgres,
  untilAnswered,
} from './helpers/server.ts'
import { waitFor } from './helpers/wait.ts'
import { type Receiver, startReceiver } from './helpers/webhook-receiver.ts'

// The promise of the outbox, on the real `berth serve` process: a receiver that is down for a
// while and then up, and a control plane killed with SIGKILL in the middle of a burst of
// deliveries, still get every event: each event the owner's log lists arrives at the receiver at
// least once, correctly signed.

const DEPLOYMENTS = 30

describe('webhooks survive a receiver outage and kill -9 (PostgreSQL)', () => {
  let server: RunningBerth
  let receiver: Receiver

  before(async () => {
    receiver = await startReceiver()
    server = await startBerthOnPostgres({
      env: {
        ...LIFTED_QUOTAS,
        BERTH_LOG_LEVEL: 'warn',
        BERTH_OUTBOUND__ALLOW: '127.0.0.1/32',
        BERTH_NOTIFICATIONS__RETRY_DELAYS_SECONDS: '0.2,0.5,1,1,1,1,1,1,1,1,1,1,1,1,1,1',
        BERTH_RATE_LIMITS__WRITE_BURST: '1000',
        BERTH_RECONCILER__POLL_INTERVAL_MS: '100',
        // Work the killed process held is taken over this soon.
        BERTH_RECONCILER__LEASE_SECONDS: '2',
        BERTH_PROVIDERS__SIMULATED__PULL_MS: '10',
        BERTH_PROVIDERS__SIMULATED__CREATE_MS: '10',
        BERTH_PROVIDERS__SIMULATED__START_MS: '10',
      },
    })
  })
  after(async () => {
    await server?.stop()
    await receiver?.stop()
  })

  it('delivers every event once the receiver is back, across a crash', { timeout: 180_000 }, async () => {
    const { token } = await signIn(server.url)
    const client = () => api(server.url, token)
    const hook = await client().post<{ id: string; secret: string }>('/v1/webhooks', {
      url: `${receiver.url}/events`,
    })
    assert.equal(hook.status, 201, JSON.stringify(hook.body))
    // Down: every attempt fails until the receiver comes back.
    let up = false
    receiver.answer(() => (up ? { status: 204 } : { status: 503 }))

    for (let i = 0; i < DEPLOYMENTS; i++) {
      const made = await client().post<{ id: string }>('/v1/deployments', {
        name: `burst-${i}`,
        image: 'app:1',
      })
      assert.equal(made.status, 202)
    }
    await waitFor('attempts refused while the receiver is down', () => receiver.received.length >= 10, 60_000)
    await server.kill9()
    await server.restart()
    up = true
    const upAt = Date.now()

    // Every event of the owner's log, once the deployments have all run.
    const events = await waitFor(
      'every deployment running in the log',
      async () => {
        const page = await untilAnswered(
          'events',
          () =>
            api(server.url, token).get<{ items: Array<{ id: string; type: string }> }>(
              '/v1/events?limit=500',
            ),
          [200],
          30_000,
        )
        const running = page.body.items.filter((e) => e.type === 'deployment.running')
        return running.length === DEPLOYMENTS && page.body.items
      },
      120_000,
    )
    const verifier = new Webhook(hook.body.secret)
    const arrived = () =>
      new Set(
        receiver.received
          // Accepted ones: those that arrived once the receiver was back.
          .filter((r) => r.at >= upAt)
          .map((r) => (verifier.verify(r.body, r.headers as Record<string, string>) as { id: string }).id),
      )
    await waitFor(
      'every event at the receiver',
      () => {
        const got = arrived()
        return events.every((e) => got.has(e.id))
      },
      120_000,
    )
    const refusedFirst = receiver.received.filter((r) => r.headers['webhook-id'] === events[0]!.id).length
    assert.ok(refusedFirst >= 2, `the first event was tried ${refusedFirst} times: refused, then delivered`)
    // The restarted process counts its own attempts: the ones that got through, at least.
    const metrics = (await api(server.url).get<string>('/metrics')).body
    const succeeded = /berth_notify_delivery_attempts_total\{kind="webhook",outcome="succeeded"\} (\d+)/.exec(
      metrics,
    )
    assert.ok(Number(succeeded?.[1]) >= events.length, metrics.slice(0, 400))
  })
})
