import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { assertRefused, type BadInputFixture, startBadInputFixture } from './helpers/bad-input-fixture.ts'
import { type Body, type RawOptions, send } from './helpers/raw-http.ts'
import { api, type RunningBerth, signIn, startBerthOnPostgres } from './helpers/server.ts'

// Idempotency-Key and deployment names against the real `berth serve`: a retried create makes one
// deployment, a reused key or a taken name is refused with 409 and writes nothing.

describe('idempotency and names (e2e)', () => {
  let fixture: BadInputFixture
  const call = (method: string, path: string, options: RawOptions = {}) => fixture.call(method, path, options)
  const snapshot = () => fixture.snapshot()
  const body = { name: 'idem', image: 'nginx:1.27', replicas: 2 }

  before(async () => {
    fixture = await startBadInputFixture()
  })

  after(async () => {
    await fixture?.stop()
  })

  it('same Idempotency-Key and body twice: the same deployment, created once', async () => {
    const before = await snapshot()
    const headers = { 'idempotency-key': 'create-idem-1' }
    const first = await call('POST', '/v1/deployments', { token: fixture.owner.token, json: body, headers })
    assert.equal(first.status, 202, JSON.stringify(first.body))
    const second = await call('POST', '/v1/deployments', { token: fixture.owner.token, json: body, headers })
    assert.ok(second.status === 202 || second.status === 200, JSON.stringify(second.body))
    assert.equal(second.body.id, first.body.id)
    const after = await snapshot()
    assert.equal(after.total, before.total + 1)
    assert.equal(after.deployments.filter((d: string) => d.endsWith(' idem')).length, 1)
  })

  it('same Idempotency-Key with another body: 409, and nothing written', async () => {
    const before = await snapshot()
    const reply = await call('POST', '/v1/deployments', {
      token: fixture.owner.token,
      json: { ...body, replicas: 3 },
      headers: { 'idempotency-key': 'create-idem-1' },
    })
    assertRefused(reply, 409, 'conflict', /Idempotency-Key/i, 'reused key')
    const renamed = await call('POST', '/v1/deployments', {
      token: fixture.owner.token,
      json: { ...body, name: 'idem-other' },
      headers: { 'idempotency-key': 'create-idem-1' },
    })
    assertRefused(renamed, 409, 'conflict', /Idempotency-Key/i, 'reused key, other name')
    assert.deepEqual(await snapshot(), before)
  })

  it('an Idempotency-Key belongs to its account', async () => {
    const other = await signIn(fixture.berth.url)
    const reply = await call('POST', '/v1/deployments', {
      token: other.token,
      json: { ...body, replicas: 5 },
      headers: { 'idempotency-key': 'create-idem-1' },
    })
    assert.equal(reply.status, 202, JSON.stringify(reply.body))
    assert.equal(reply.body.spec.replicas, 5)
  })

  it('a duplicate name is 409 naming the name, and nothing written', async () => {
    const before = await snapshot()
    const reply = await call('POST', '/v1/deployments', {
      token: fixture.owner.token,
      json: { name: 'existing', image: 'redis:7' },
    })
    assertRefused(reply, 409, 'conflict', /existing/, 'duplicate name')
    const withKey = await call('POST', '/v1/deployments', {
      token: fixture.owner.token,
      json: { name: 'existing', image: 'redis:7' },
      headers: { 'idempotency-key': 'fresh-key-for-a-taken-name' },
    })
    assertRefused(withKey, 409, 'conflict', /existing/, 'duplicate name with a key')
    assert.deepEqual(await snapshot(), before)
    // The refused request did not claim the key either: it still works for a free name.
    const later = await call('POST', '/v1/deployments', {
      token: fixture.owner.token,
      json: { name: 'fresh', image: 'redis:7' },
      headers: { 'idempotency-key': 'fresh-key-for-a-taken-name' },
    })
    assert.equal(later.status, 202, JSON.stringify(later.body))
  })

  it('10 concurrent retries with one Idempotency-Key: one deployment, every answer names it', async () => {
    const before = await snapshot()
    const replies = await Promise.all(
      Array.from({ length: 10 }, () =>
        call('POST', '/v1/deployments', {
          token: fixture.owner.token,
          json: { name: 'retried', image: 'nginx' },
          headers: { 'idempotency-key': 'retried-1' },
        }),
      ),
    )
    const ids = new Set(replies.map((r) => r.body.id))
    assert.deepEqual(
      replies.map((r) => r.status),
      Array(10).fill(202),
      JSON.stringify(replies.map((r) => r.body.error?.message ?? r.body.id)),
    )
    assert.equal(ids.size, 1)
    assert.equal((await snapshot()).total, before.total + 1)
  })
})

describe('idempotency under real concurrency on PostgreSQL (e2e)', () => {
  let server: RunningBerth

  before(async () => {
    server = await startBerthOnPostgres({ env: { BERTH_LOG_LEVEL: 'warn' } })
  })

  after(async () => {
    await server?.stop()
  })

  it('10 concurrent retries with one Idempotency-Key: one deployment, every answer names it', async () => {
    const user = await signIn(server.url)
    for (let round = 0; round < 3; round++) {
      const replies = await Promise.all(
        Array.from({ length: 10 }, () =>
          send(server, 'POST', '/v1/deployments', {
            token: user.token,
            json: { name: `retried-${round}`, image: 'nginx' },
            headers: { 'idempotency-key': `retried-${round}` },
          }),
        ),
      )
      assert.deepEqual(
        replies.map((r) => r.status),
        Array(10).fill(202),
        `round ${round}: ${JSON.stringify(replies.map((r) => r.body.error?.message ?? r.body.id))}`,
      )
      assert.equal(new Set(replies.map((r) => r.body.id)).size, 1)
    }
    const list = await api(server.url, user.token).get<Body>('/v1/deployments')
    assert.equal(list.body.total, 3)
  })
})
