import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Webhook } from 'standardwebhooks'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { type Caller, createTestApp, type TestApp } from './helpers/http-app.ts'
import { createStack, type Stack } from './helpers/stack.ts'
import { waitFor } from './helpers/wait.ts'
import { type Received, type Receiver, startReceiver } from './helpers/webhook-receiver.ts'

// Webhooks as a receiver sees them: every delivery verified with the standardwebhooks package
// (an implementation of the specification that is not berth's), the same webhook-id on every
// attempt, retries until the receiver answers, a 410 turning the webhook off, a secret rotation
// signing with both secrets, and a delivery log that says what happened.

const wallet = (n: number) => `0x${n.toString(16).padStart(2, '0').repeat(20)}`
const notifications = {
  retryDelaysSeconds: [0.05, 0.1, 0.1],
  concurrencyPerTarget: 2,
  // Longer than any test holds an answer: a held attempt must stay in flight, not time out.
  attemptTimeoutSeconds: 30,
}

/** The event a delivery carries, after standardwebhooks verified its signature with `secret`. */
function verified(secret: string, r: Received) {
  return new Webhook(secret).verify(r.body, r.headers as Record<string, string>) as {
    id: string
    type: string
    data: Record<string, unknown>
  }
}

for (const kind of databaseKinds) {
  describe(`webhooks (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp
    let receiver: Receiver

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database, {
        flags: { outbound: { allow: ['127.0.0.1/32'] }, notifications },
      })
      app = await createTestApp(database, stack)
      receiver = await startReceiver()
    })
    after(async () => {
      await stack.stop()
      await receiver.stop()
      await database.dispose()
    })

    const deliveredTo = (path: string) => receiver.received.filter((r) => r.path === path)

    it('tells a deployment running, signed so standardwebhooks accepts it, and lists the same event', async () => {
      const call = await app.user(wallet(1))
      const made = await call('POST', '/v1/webhooks', {
        url: `${receiver.url}/running`,
        eventTypes: ['deployment.running'],
        description: 'ops',
      })
      assert.equal(made.status, 201, JSON.stringify(made.body))
      assert.match(made.body.secret, /^whsec_[A-Za-z0-9+/=]{40,}$/)
      const listed = await call('GET', '/v1/webhooks')
      assert.equal(listed.body.items.length, 1)
      assert.equal(listed.body.items[0].secret, undefined, 'the secret is shown once')
      assert.equal(listed.body.items[0].shown, `${receiver.url}/…ning`, 'the path is mostly hidden')

      const created = await call('POST', '/v1/deployments', { name: 'web', image: 'app:1' })
      const id = created.body.id
      const [delivery] = await waitFor('the running webhook', () => {
        const got = deliveredTo('/running')
        return got.length > 0 && got
      })
      const event = verified(made.body.secret, delivery!)
      assert.equal(event.type, 'deployment.running')
      assert.equal(event.data.deploymentId, id)
      assert.equal(event.data.name, 'web')
      assert.equal(delivery!.headers['webhook-id'], event.id)
      assert.match(event.id, /^evt_[0-9a-f]{32}$/)

      const page = await call('GET', '/v1/events?types=deployment.running')
      assert.equal(page.status, 200)
      assert.deepEqual(
        page.body.items.map((e: { id: string }) => e.id),
        [event.id],
      )
      const next = await call('GET', `/v1/events?cursor=${page.body.cursor}`)
      assert.ok(next.body.items.every((e: { position: number }) => e.position > page.body.cursor))
      const bad = await call('GET', '/v1/events?types=deployment.exploded')
      assert.equal(bad.status, 400)
      assert.match(bad.body.error.message, /deployment\.exploded/)
    })

    it('retries with the same webhook-id until the receiver answers, and logs each attempt', async () => {
      const call = await app.user(wallet(2))
      const made = await call('POST', '/v1/webhooks', { url: `${receiver.url}/flaky` })
      let refused = 0
      receiver.answer((r) => (r.path === '/flaky' && refused++ < 2 ? { status: 503 } : { status: 204 }))
      assert.equal((await call('POST', `/v1/webhooks/${made.body.id}/test`)).status, 202)
      const attempts = await waitFor('three attempts', () => {
        const got = deliveredTo('/flaky')
        return got.length >= 3 && got
      })
      receiver.answer(() => ({ status: 204 }))
      const ids = new Set(attempts.map((r) => r.headers['webhook-id']))
      assert.equal(ids.size, 1, 'one webhook-id across the retries')
      for (const r of attempts) assert.equal(verified(made.body.secret, r).type, 'webhook.test')
      const log = await waitFor('the delivery succeeded', async () => {
        const items = (await call('GET', `/v1/webhooks/${made.body.id}/deliveries`)).body.items
        return items[0]?.state === 'succeeded' && items
      })
      assert.equal(log[0].attempts, 3)
      assert.equal(log[0].statusCode, 204)
      assert.equal(typeof log[0].latencyMs, 'number')
      assert.equal(log[0].nextAttemptAt, null)
    })

    it('signs with both secrets for a day after a rotation', async () => {
      const call = await app.user(wallet(3))
      const made = await call('POST', '/v1/webhooks', { url: `${receiver.url}/rotated` })
      const rotated = await call('POST', `/v1/webhooks/${made.body.id}/rotate-secret`)
      assert.equal(rotated.status, 200)
      assert.notEqual(rotated.body.secret, made.body.secret)
      const until = Date.parse(rotated.body.previousSecretValidUntil)
      assert.ok(Math.abs(until - Date.now() - 24 * 3600_000) < 60_000)
      await call('POST', `/v1/webhooks/${made.body.id}/test`)
      const [delivery] = await waitFor('the rotated delivery', () => {
        const got = deliveredTo('/rotated')
        return got.length > 0 && got
      })
      assert.equal(String(delivery!.headers['webhook-signature']).split(' ').length, 2)
      assert.equal(
        verified(made.body.secret, delivery!).type,
        'webhook.test',
        'the old secret still verifies',
      )
      assert.equal(verified(rotated.body.secret, delivery!).type, 'webhook.test', 'the new one verifies')
      assert.throws(() => verified(`whsec_${Buffer.alloc(32, 7).toString('base64')}`, delivery!))
    })

    it('turns a webhook off when it answers 410, and tells the owner', async () => {
      const call = await app.user(wallet(4))
      const made = await call('POST', '/v1/webhooks', { url: `${receiver.url}/gone` })
      receiver.answer((r) => (r.path === '/gone' ? { status: 410 } : { status: 204 }))
      await call('POST', `/v1/webhooks/${made.body.id}/test`)
      const off = await waitFor('turned off', async () => {
        const hook = (await call('GET', `/v1/webhooks/${made.body.id}`)).body
        return !hook.enabled && hook
      })
      receiver.answer(() => ({ status: 204 }))
      assert.equal(off.disabledReason, 'gone')
      assert.equal(deliveredTo('/gone').length, 1, 'a 410 is not retried')
      const told = await waitFor('webhook.disabled in the inbox', async () => {
        const inbox = (await call('GET', '/v1/notifications')).body
        return inbox.items.find((n: { type: string }) => n.type === 'webhook.disabled')
      })
      assert.match(told.message, /was disabled \(gone\)/)
      assert.equal(told.read, false)
      const marked = await call('POST', '/v1/notifications/read', {})
      assert.ok(marked.body.marked >= 1)
      assert.equal((await call('GET', '/v1/notifications?unread=true')).body.items.length, 0)
      // Enabled again by its owner, it is told events again.
      const on = await call('PATCH', `/v1/webhooks/${made.body.id}`, { enabled: true })
      assert.equal(on.body.enabled, true)
      assert.equal(on.body.disabledReason, null)
    })

    it('turns a webhook off when a delivery failed its whole schedule, after retrying each attempt', async () => {
      const call = await app.user(wallet(5))
      const made = await call('POST', '/v1/webhooks', { url: `${receiver.url}/down` })
      receiver.answer((r) => (r.path === '/down' ? { status: 500 } : { status: 204 }))
      await call('POST', `/v1/webhooks/${made.body.id}/test`)
      const off = await waitFor('turned off', async () => {
        const hook = (await call('GET', `/v1/webhooks/${made.body.id}`)).body
        return !hook.enabled && hook
      })
      receiver.answer(() => ({ status: 204 }))
      assert.equal(off.disabledReason, 'failing')
      assert.equal(deliveredTo('/down').length, notifications.retryDelaysSeconds.length + 1)
      const [log] = (await call('GET', `/v1/webhooks/${made.body.id}/deliveries`)).body.items
      assert.equal(log.state, 'failed')
      assert.equal(log.error, 'answered 500')
      // A retry asked for by hand starts afresh, and now it arrives.
      const retried = await call('POST', `/v1/webhooks/${made.body.id}/deliveries/${log.id}/retry`)
      assert.equal(retried.status, 202)
      await waitFor('the retried delivery', async () => {
        const items = (await call('GET', `/v1/webhooks/${made.body.id}/deliveries`)).body.items
        return items[0]?.state === 'succeeded'
      })
    })

    it('keeps to the per-webhook limit of attempts in flight, without holding up other webhooks', async () => {
      const call = await app.user(wallet(6))
      const slow = await call('POST', '/v1/webhooks', { url: `${receiver.url}/slow` })
      const quick = await call('POST', '/v1/webhooks', { url: `${receiver.url}/quick` })
      // The slow receiver holds its answers until released, however long this machine takes.
      receiver.answer((r) => (r.path === '/slow' ? { status: 204, delayMs: 60_000 } : { status: 204 }))
      for (let i = 0; i < 6; i++) await call('POST', `/v1/webhooks/${slow.body.id}/test`)
      await waitFor('two slow ones in flight', () => deliveredTo('/slow').length >= 2)
      await call('POST', `/v1/webhooks/${quick.body.id}/test`)
      await waitFor('the quick one, while the slow ones wait', () => deliveredTo('/quick').length === 1)
      assert.equal(deliveredTo('/slow').length, 2, 'no more than 2 at the slow webhook')
      receiver.answer(() => ({ status: 204 }))
      receiver.release()
      await waitFor('all six', () => deliveredTo('/slow').length === 6, 30_000)
    })

    it('lists a URL without its query or most of its path, and sends a webhook ten test events a minute at most', async () => {
      const call = await app.user(wallet(9))
      const made = await call('POST', '/v1/webhooks', { url: `${receiver.url}/limited?token=s3cret` })
      assert.equal(made.body.shown, `${receiver.url}/…ited`)
      assert.doesNotMatch(JSON.stringify((await call('GET', '/v1/webhooks')).body), /s3cret/)
      for (let i = 0; i < 10; i++) {
        assert.equal((await call('POST', `/v1/webhooks/${made.body.id}/test`)).status, 202, `test ${i + 1}`)
      }
      const refused = await call('POST', `/v1/webhooks/${made.body.id}/test`)
      assert.equal(refused.status, 429)
      assert.match(refused.body.error.message, /10 test events a minute/)
      const limited = () => receiver.received.filter((r) => r.path === '/limited?token=s3cret')
      await waitFor('the ten tests, to the URL with its query', () => limited().length === 10)
      // And an owner thirty tests and retries a minute, over all its webhooks.
      const more = await Promise.all(
        ['a', 'b', 'c'].map(
          async (n) => (await call('POST', '/v1/webhooks', { url: `${receiver.url}/more-${n}` })).body.id,
        ),
      )
      for (const id of more.slice(0, 2)) {
        for (let i = 0; i < 10; i++) assert.equal((await call('POST', `/v1/webhooks/${id}/test`)).status, 202)
      }
      const thirtyFirst = await call('POST', `/v1/webhooks/${more[2]}/test`)
      assert.equal(thirtyFirst.status, 429)
      assert.match(thirtyFirst.body.error.message, /30 tests and retries a minute/)
    })

    it('refuses internal addresses it has not been allowed, and keeps other owners out', async () => {
      const call = await app.user(wallet(7))
      for (const url of [
        'http://10.0.0.1/hook',
        'http://127.0.0.2:9/hook',
        'http://[::1]/x',
        'http://169.254.169.254/',
      ]) {
        const refused = await call('POST', '/v1/webhooks', { url })
        assert.equal(refused.status, 400, url)
        assert.match(refused.body.error.message, /not a public address/)
      }
      for (const url of ['ftp://example.com/', 'http://user:pw@example.com/', 'not a url']) {
        assert.equal((await call('POST', '/v1/webhooks', { url })).status, 400, url)
      }
      const made = await call('POST', '/v1/webhooks', { url: `${receiver.url}/mine` })
      const stranger: Caller = await app.user(wallet(8))
      for (const [method, path] of [
        ['GET', `/v1/webhooks/${made.body.id}`],
        ['PATCH', `/v1/webhooks/${made.body.id}`],
        ['DELETE', `/v1/webhooks/${made.body.id}`],
        ['POST', `/v1/webhooks/${made.body.id}/rotate-secret`],
        ['GET', `/v1/webhooks/${made.body.id}/deliveries`],
      ] as const) {
        const reply = await stranger(method, path, method === 'PATCH' ? { enabled: false } : undefined)
        assert.equal(reply.status, 404, `${method} ${path}`)
      }
      assert.equal((await call('DELETE', `/v1/webhooks/${made.body.id}`)).status, 204)
      assert.equal((await call('GET', '/v1/webhooks')).body.items.length, 0)
    })
  })
}
