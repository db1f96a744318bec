import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { request } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { api, type RunningBerth, type SignedIn, signIn, startBerth } from './helpers/server.ts'
import { waitFor } from './helpers/wait.ts'

// Two wallets on one real `berth serve`: B, holding every id of A's, can neither see nor touch
// anything of A's. Someone else's deployment answers exactly like a missing one (404), so B
// cannot even learn that the id exists.

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Body = any

interface Reply {
  status: number
  contentType: string
  body: Body
}

let berth: RunningBerth
let a: SignedIn
let b: SignedIn
let deploymentId: string
let apiKeyId: string
let apiKey: string
let bApiKey: string

/** One HTTP request on its own connection; a stream is read only up to its first chunk. */
function call(
  method: string,
  path: string,
  token: string | undefined,
  options: { headers?: Record<string, string>; body?: unknown } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body)
    const req = request(
      `${berth.url}${path}`,
      {
        method,
        agent: false,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(payload ? { 'content-type': 'application/json' } : {}),
          ...options.headers,
        },
      },
      (res) => {
        const contentType = String(res.headers['content-type'] ?? '')
        let text = ''
        const finish = () => {
          let body: Body = text
          if (contentType.includes('json') && text) body = JSON.parse(text)
          resolve({ status: res.statusCode ?? 0, contentType, body })
        }
        res.setEncoding('utf8')
        if (
          contentType.includes('text/event-stream') ||
          (res.statusCode === 200 && path.includes('follow'))
        ) {
          // A stream that was let through: take what is there first and hang up.
          res.once('data', (chunk: string) => {
            text = chunk
            res.destroy()
            finish()
          })
          return
        }
        res.on('data', (chunk: string) => {
          text += chunk
        })
        res.on('end', finish)
      },
    )
    req.on('upgrade', (res, socket) => {
      socket.destroy()
      resolve({ status: res.statusCode ?? 101, contentType: '', body: 'upgraded' })
    })
    req.on('error', reject)
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path} timed out`)))
    if (payload) req.write(payload)
    req.end()
  })
}

const wsHeaders = {
  connection: 'Upgrade',
  upgrade: 'websocket',
  'sec-websocket-version': '13',
  'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
}

/** Every route that names one of A's resources, as B would call it. */
function routesOnAsIds(): Array<{
  label: string
  method: string
  path: string
  headers?: Record<string, string>
  /** What an API key gets instead of 404, where keys may not act at all (it says nothing of A's). */
  forKeys?: { status: number; code: string }
}> {
  const d = `/v1/deployments/${deploymentId}`
  return [
    { label: 'get deployment', method: 'GET', path: d },
    { label: 'events (JSON)', method: 'GET', path: `${d}/events` },
    { label: 'events (SSE, ?follow=1)', method: 'GET', path: `${d}/events?follow=1` },
    {
      label: 'events (SSE, Accept)',
      method: 'GET',
      path: `${d}/events`,
      headers: { accept: 'text/event-stream' },
    },
    { label: 'events WebSocket upgrade', method: 'GET', path: `${d}/ws`, headers: wsHeaders },
    { label: 'logs', method: 'GET', path: `${d}/logs` },
    { label: 'logs (follow)', method: 'GET', path: `${d}/logs?follow=1&tail=10` },
    { label: 'stop', method: 'POST', path: `${d}/stop` },
    { label: 'start', method: 'POST', path: `${d}/start` },
    { label: 'restart', method: 'POST', path: `${d}/restart` },
    { label: 'delete', method: 'DELETE', path: d },
    {
      label: 'delete API key',
      method: 'DELETE',
      path: `/v1/api-keys/${apiKeyId}`,
      forKeys: { status: 403, code: 'forbidden' },
    },
  ]
}

async function snapshotOfA() {
  const deployment = await api(berth.url, a.token).get<Body>(`/v1/deployments/${deploymentId}`)
  assert.equal(deployment.status, 200)
  const events = await api(berth.url, a.token).get<Body>(`/v1/deployments/${deploymentId}/events`)
  assert.equal(events.status, 200)
  const keys = await api(berth.url, a.token).get<Body>('/v1/api-keys')
  assert.equal(keys.status, 200)
  return {
    status: deployment.body.status,
    desiredState: deployment.body.desiredState,
    stopReason: deployment.body.stopReason,
    eventCount: events.body.items.length,
    lastEvent: events.body.items.at(-1)?.seq,
    keyIds: keys.body.items.map((k: Body) => k.id),
  }
}

before(async () => {
  berth = await startBerth({ env: { BERTH_LOG_LEVEL: 'warn' } })
  a = await signIn(berth.url)
  b = await signIn(berth.url)
  assert.notEqual(a.address, b.address)

  const created = await api(berth.url, a.token).post<Body>('/v1/deployments', {
    name: 'mine',
    image: 'nginx:1.27',
  })
  assert.equal(created.status, 202, JSON.stringify(created.body))
  deploymentId = created.body.id
  await waitFor('A’s deployment to be running', async () => {
    const d = await api(berth.url, a.token).get<Body>(`/v1/deployments/${deploymentId}`)
    return d.body.status === 'running'
  })

  const key = await api(berth.url, a.token).post<Body>('/v1/api-keys', { name: 'ci' })
  assert.equal(key.status, 201, JSON.stringify(key.body))
  apiKeyId = key.body.id
  apiKey = key.body.key
  const bKey = await api(berth.url, b.token).post<Body>('/v1/api-keys', { name: 'b-ci' })
  assert.equal(bKey.status, 201)
  bApiKey = bKey.body.key
})

after(async () => {
  await berth?.stop()
})

describe('isolation between wallets (e2e)', () => {
  it('A reaches every one of its own routes (the control)', async () => {
    const d = `/v1/deployments/${deploymentId}`
    assert.equal((await call('GET', d, a.token)).status, 200)
    const events = await call('GET', `${d}/events`, a.token)
    assert.equal(events.status, 200)
    assert.ok(events.body.items.length > 0)
    const sse = await call('GET', `${d}/events?follow=1`, a.token)
    assert.equal(sse.status, 200)
    assert.match(sse.contentType, /text\/event-stream/)
    assert.match(sse.body, /event: deployment/)
    assert.equal((await call('GET', `${d}/ws`, a.token, { headers: wsHeaders })).status, 101)
    assert.equal((await call('GET', `${d}/logs`, a.token)).status, 200)
    const keys = await api(berth.url, a.token).get<Body>('/v1/api-keys')
    assert.ok(keys.body.items.some((k: Body) => k.id === apiKeyId))
  })

  for (const [who, token] of [
    ['B with a session', () => b.token],
    ['B with an API key', () => bApiKey],
  ] as const) {
    it(`${who}: every route with A’s ids answers 404, and A’s things are unchanged`, async () => {
      const before = await snapshotOfA()
      assert.equal(before.status, 'running')
      const wrong: string[] = []
      for (const route of routesOnAsIds()) {
        const reply = await call(route.method, route.path, token(), {
          ...(route.headers ? { headers: route.headers } : {}),
        })
        // A refused WebSocket upgrade is answered by @hono/node-ws with the status and an empty
        // body (no client can read a body there); every other refusal carries the error JSON.
        const refusedUpgrade = route.headers === wsHeaders && reply.body === ''
        const expected = (who === 'B with an API key' && route.forKeys) || { status: 404, code: 'not_found' }
        if (
          reply.status !== expected.status ||
          (!refusedUpgrade && reply.body?.error?.code !== expected.code)
        ) {
          wrong.push(`${route.label}: ${reply.status} ${JSON.stringify(reply.body).slice(0, 200)}`)
        } else {
          // The answer must not differ from a missing deployment's, or it leaks that the id exists.
          assert.doesNotMatch(JSON.stringify(reply.body), new RegExp(a.address, 'i'))
        }
      }
      assert.deepEqual(wrong, [])

      const after = await snapshotOfA()
      assert.deepEqual(after, before, 'A’s deployment and keys must be untouched')
      // A's key still authenticates as A.
      const me = await api(berth.url, apiKey).get<Body>('/v1/auth/me')
      assert.equal(me.status, 200)
      assert.equal(me.body.address, a.address.toLowerCase())
    })
  }

  it('answers A’s ids exactly like ids that do not exist', async () => {
    const missing = `/v1/deployments/${randomUUID()}`
    const theirs = `/v1/deployments/${deploymentId}`
    const missingReply = await call('GET', missing, b.token)
    const theirReply = await call('GET', theirs, b.token)
    assert.equal(missingReply.status, 404)
    assert.equal(theirReply.status, missingReply.status)
    assert.equal(theirReply.body.error.message, missingReply.body.error.message)
  })

  it('B’s lists show none of A’s things', async () => {
    const list = await api(berth.url, b.token).get<Body>('/v1/deployments')
    assert.equal(list.status, 200)
    assert.equal(list.body.total, 0)
    assert.deepEqual(list.body.items, [])
    const keys = await api(berth.url, b.token).get<Body>('/v1/api-keys')
    assert.ok(!keys.body.items.some((k: Body) => k.id === apiKeyId))
    for (const status of ['running', 'pending', 'deleted']) {
      const filtered = await api(berth.url, b.token).get<Body>(`/v1/deployments?status=${status}`)
      assert.equal(filtered.body.total, 0, status)
    }
  })

  it('B may use the same deployment name as A', async () => {
    const created = await api(berth.url, b.token).post<Body>('/v1/deployments', {
      name: 'mine',
      image: 'nginx',
    })
    assert.equal(created.status, 202, JSON.stringify(created.body))
    assert.notEqual(created.body.id, deploymentId)
    const aList = await api(berth.url, a.token).get<Body>('/v1/deployments')
    assert.equal(aList.body.total, 1, 'B’s deployment must not show up in A’s list')
    assert.deepEqual(
      aList.body.items.map((d: Body) => d.id),
      [deploymentId],
    )
  })
})

describe('authentication on every /v1 route (e2e)', () => {
  it('answers 401 to every /v1 route without a token', async () => {
    const d = `/v1/deployments/${deploymentId}`
    const routes: Array<[string, string, unknown?, Record<string, string>?]> = [
      ['GET', '/v1/auth/me'],
      ['POST', '/v1/auth/logout'],
      ['GET', '/v1/api-keys'],
      ['POST', '/v1/api-keys', { name: 'x' }],
      ['DELETE', `/v1/api-keys/${apiKeyId}`],
      ['GET', '/v1/deployments'],
      ['POST', '/v1/deployments', { name: 'sneaky', image: 'nginx' }],
      ['GET', d],
      ['DELETE', d],
      ['POST', `${d}/stop`],
      ['POST', `${d}/start`],
      ['POST', `${d}/restart`],
      ['GET', `${d}/events`],
      ['GET', `${d}/events?follow=1`],
      ['GET', `${d}/events`, undefined, { accept: 'text/event-stream' }],
      ['GET', `${d}/ws`, undefined, wsHeaders],
      ['GET', `${d}/logs`],
      ['GET', `${d}/logs?follow=1`],
      ['GET', '/v1/no-such-route'],
    ]
    const before = await snapshotOfA()
    const wrong: string[] = []
    for (const [method, path, body, headers] of routes) {
      const reply = await call(method, path, undefined, {
        ...(body === undefined ? {} : { body }),
        ...(headers ? { headers } : {}),
      })
      const refusedUpgrade = headers === wsHeaders && reply.body === ''
      if (reply.status !== 401 || (!refusedUpgrade && reply.body?.error?.code !== 'unauthorized')) {
        wrong.push(`${method} ${path}: ${reply.status} ${JSON.stringify(reply.body).slice(0, 200)}`)
      }
    }
    assert.deepEqual(wrong, [])
    assert.deepEqual(await snapshotOfA(), before)
  })

  it('answers 401 to a revoked API key', async () => {
    const key = await api(berth.url, b.token).post<Body>('/v1/api-keys', { name: 'short-lived' })
    assert.equal((await api(berth.url, key.body.key).get<Body>('/v1/deployments')).status, 200)
    assert.equal((await api(berth.url, b.token).del<Body>(`/v1/api-keys/${key.body.id}`)).status, 200)
    const refused = await api(berth.url, key.body.key).get<Body>('/v1/deployments')
    assert.equal(refused.status, 401)
    assert.equal((refused.body as Body).error.code, 'unauthorized')
  })
})
