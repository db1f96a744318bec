import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { FAIL_AT_LABEL } from '../src/providers/simulated/simulated-provider.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { type Caller, createTestApp, type TestApp } from './helpers/http-app.ts'
import { outboxTypes } from './helpers/outbox.ts'
import { createStack, type Stack } from './helpers/stack.ts'
import { waitFor } from './helpers/wait.ts'

// What is written to the outbox, and when: each status worth telling as the deployment arrives at
// it, a quota refusal at most once an hour, an operator's grant; and the owner's event list, read
// page by page after a cursor, holds each of them once, in order.

const ADMIN_TOKEN = 'outbox-test-admin-token-0123456789'
const wallet = (n: number) => `0x${n.toString(16).padStart(2, '0').repeat(20)}`

for (const kind of databaseKinds) {
  describe(`the outbox (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database, {
        flags: {
          adminToken: ADMIN_TOKEN,
          quotas: { deployments: 3 },
        },
      })
      app = await createTestApp(database, stack)
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    const me = async (call: Caller) => (await call('GET', '/v1/auth/me')).body.accountId as string
    const statusOf = async (call: Caller, id: string) =>
      (await call('GET', `/v1/deployments/${id}`)).body.status

    it('tells a deployment running, stopped and deleted, each once', async () => {
      const call = await app.user(wallet(1))
      const { id } = (await call('POST', '/v1/deployments', { name: 'web', image: 'app:1' })).body
      await waitFor('running', async () => (await statusOf(call, id)) === 'running')
      await call('POST', `/v1/deployments/${id}/stop`)
      await waitFor('stopped', async () => (await statusOf(call, id)) === 'stopped')
      await call('DELETE', `/v1/deployments/${id}`)
      await waitFor('deleted', async () =>
        (await outboxTypes(database, await me(call))).includes('deployment.deleted'),
      )
      assert.deepEqual(await outboxTypes(database, await me(call)), [
        'deployment.running',
        'deployment.stopped',
        'deployment.deleted',
      ])
    })

    it('tells a failure with its reason', async () => {
      const call = await app.user(wallet(2))
      const failing = await call('POST', '/v1/deployments', {
        name: 'broken',
        image: 'app:1',
        labels: { [FAIL_AT_LABEL]: 'pulling' },
      })
      await waitFor('failed', async () => (await statusOf(call, failing.body.id)) === 'failed')
      const owner = await me(call)
      const [failed] = await database.query<{
        payload: { error: string; name: string; previousStatus: string }
      }>(
        `select payload from outbox_events where owner_id = $1 and type = 'deployment.failed' and deployment_id = $2`,
        [owner, failing.body.id],
      )
      assert.equal(failed?.payload.name, 'broken')
      assert.match(failed!.payload.error, /simulated failure at stage pulling/)
    })

    it('tells a quota reached once an hour however often it is refused', async () => {
      const call = await app.user(wallet(3))
      for (let i = 0; i < 3; i++) await call('POST', '/v1/deployments', { name: `d${i}`, image: 'app:1' })
      for (let i = 0; i < 3; i++) {
        const refused = await call('POST', '/v1/deployments', { name: `over${i}`, image: 'app:1' })
        assert.equal(refused.status, 403)
      }
      const owner = await me(call)
      assert.equal((await outboxTypes(database, owner)).filter((t) => t === 'quota.reached').length, 1)
    })

    it("tells an operator's grant as a credit, and lists every event once, page after page", async () => {
      const call = await app.user(wallet(4))
      // Told every event: its deliveries are attempted and fail (tests resolve no names).
      const everything = await call('POST', '/v1/webhooks', { url: 'https://hooks.example.com/all' })
      assert.equal(everything.status, 201, JSON.stringify(everything.body))
      const hook = `/v1/webhooks/${everything.body.id}`
      for (let i = 0; i < 7; i++) {
        const granted = await app.admin()('POST', `/v1/admin/accounts/${wallet(4)}/credits`, {
          amountMicroUsd: String(1_000_000 + i),
          reason: `grant ${i}`,
        })
        assert.equal(granted.status, 200, JSON.stringify(granted.body))
      }
      await app.notify.publish()
      const seen: Array<{ id: string; type: string; data: { microUsd: string } }> = []
      let cursor = 0
      for (;;) {
        const page = await call('GET', `/v1/events?limit=3&cursor=${cursor}`)
        if (page.body.items.length === 0) break
        seen.push(...page.body.items)
        cursor = page.body.cursor
      }
      assert.equal(new Set(seen.map((e) => e.id)).size, 7)
      assert.deepEqual(
        seen.map((e) => e.data.microUsd),
        Array.from({ length: 7 }, (_, i) => String(1_000_000 + i)),
      )
      assert.ok(seen.every((e) => e.type === 'payment.credited'))

      // A key without payments:read reads neither the credits nor their notifications, and may
      // not subscribe a webhook to them; one with it reads them all.
      const session = await app.session(wallet(4))
      const made = await session('POST', '/v1/api-keys', {
        name: 'ops',
        scopes: ['deployments:read', 'notifications:read', 'notifications:write'],
      })
      assert.equal(made.status, 201, JSON.stringify(made.body))
      const ops = app.bearer(made.body.key)
      assert.deepEqual((await ops('GET', '/v1/events')).body.items, [])
      const inbox = (await ops('GET', '/v1/notifications')).body
      assert.deepEqual([inbox.items.length, inbox.unread], [0, 0])
      assert.equal((await call('GET', '/v1/notifications')).body.unread, 7, 'the owner still sees them')
      for (const eventTypes of [[], ['balance.low']]) {
        const refused = await ops('POST', '/v1/webhooks', { url: 'https://hooks.example.com/h', eventTypes })
        assert.equal(refused.status, 403, JSON.stringify(eventTypes))
        assert.match(refused.body.error.message, /payments:read/)
      }
      // Nor may it point a webhook told about money elsewhere, retry its deliveries, or read them.
      const moved = await ops('PATCH', hook, { url: 'https://elsewhere.example.com/steal' })
      assert.equal(moved.status, 403)
      assert.match(moved.body.error.message, /payments:read/)
      const log = await ops('GET', `${hook}/deliveries`)
      assert.equal(log.status, 200)
      assert.deepEqual(log.body.items, [])
      const owned = (await call('GET', `${hook}/deliveries?limit=100`)).body.items
      assert.equal(owned.filter((d: { eventType: string }) => d.eventType === 'payment.credited').length, 7)
      const retried = await ops('POST', `${hook}/deliveries/${owned[0].id}/retry`)
      assert.equal(retried.status, 403)
      const finance = await session('POST', '/v1/api-keys', {
        name: 'finance',
        scopes: ['payments:read', 'notifications:read'],
      })
      assert.equal((await app.bearer(finance.body.key)('GET', '/v1/events')).body.items.length, 7)
    })
  })
}
