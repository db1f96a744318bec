import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { pino } from 'pino'
import { Webhook } from 'standardwebhooks'
import { conditionsNow, tellChanges } from '../src/notify/operator-alerts.ts'
import { newSigningSecret } from '../src/notify/signing.ts'
import { type Provider, ProviderRegistry } from '../src/providers/provider.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { createTestApp, type TestApp } from './helpers/http-app.ts'
import { createStack, type Stack } from './helpers/stack.ts'
import { waitFor } from './helpers/wait.ts'
import { type Receiver, startReceiver } from './helpers/webhook-receiver.ts'

// The operator's alerts: a provider that stops answering, one nearly full, deliveries piling up.
// Each change is told once to the operator's own targets (never to an owner), raised and then
// resolved, however often the conditions are looked at.

const secret = newSigningSecret()

for (const kind of databaseKinds) {
  describe(`operator alerts (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp
    let receiver: Receiver

    before(async () => {
      database = await openTestDatabase(kind)
      receiver = await startReceiver()
      stack = await createStack(database, {
        flags: {
          outbound: { allow: ['127.0.0.1/32'] },
          notifications: {
            retryDelaysSeconds: [0.05],
            operator: { webhooks: [{ url: `${receiver.url}/ops`, secret }], backlogDeliveries: 5 },
          },
        },
      })
      app = await createTestApp(database, stack)
    })
    after(async () => {
      await stack.stop()
      await receiver.stop()
      await database.dispose()
    })

    it('sees a provider that does not answer, and one that does', async () => {
      const down = { name: 'far-away', ping: async () => false } as unknown as Provider
      const providers = new ProviderRegistry('simulated')
      providers.add(stack.provider)
      providers.add(down)
      const conditions = await conditionsNow({
        database,
        providers,
        capacity: {
          inUse: async () => ({
            held: { milliCpus: 950, memoryMb: 10 },
            total: { milliCpus: 1000, memoryMb: 100 },
          }),
        },
        metrics: stack.metrics,
        settings: stack.config.notifications.operator,
        logger: pino({ level: 'silent' }),
      })
      const byKey = new Map(conditions.map((c) => [c.key, c]))
      assert.equal(byKey.get('provider:far-away')?.raised, true)
      assert.equal(byKey.get('provider:simulated')?.raised, false)
      assert.equal(byKey.get('capacity:simulated')?.raised, true, '95% is over the 90% default')
      assert.equal(byKey.get('capacity:simulated')?.detail.percent, 95)
      assert.equal(byKey.get('backlog')?.raised, false)
    })

    it('tells a raised condition once, and its end once, signed for the operator', async () => {
      const condition = {
        key: 'provider:far-away',
        type: 'operator.provider_unavailable' as const,
        raised: true,
        summary: 'Provider far-away does not answer',
        detail: { provider: 'far-away' },
      }
      assert.deepEqual(await tellChanges(database, [condition]), [
        'operator.provider_unavailable provider:far-away',
      ])
      assert.deepEqual(await tellChanges(database, [condition]), [], 'still standing: not told again')
      assert.deepEqual(await tellChanges(database, [{ ...condition, raised: false }]), [
        'operator.resolved provider:far-away',
      ])
      assert.deepEqual(await tellChanges(database, [{ ...condition, raised: false }]), [])
      const told = await waitFor('both alerts', () => {
        const got = receiver.received.filter((r) => r.path === '/ops')
        return got.length >= 2 && got
      })
      const events = told.map(
        (r) =>
          new Webhook(secret).verify(r.body, r.headers as Record<string, string>) as {
            type: string
            data: { summary: string }
          },
      )
      assert.deepEqual(
        events.map((e) => e.type),
        ['operator.provider_unavailable', 'operator.resolved'],
      )
      assert.equal(events[1]!.data.summary, 'Resolved: Provider far-away does not answer')
      // No owner hears of it.
      const call = await app.user(`0x${'7a'.repeat(20)}`)
      assert.deepEqual((await call('GET', '/v1/events')).body.items, [])
    })
  })
}
