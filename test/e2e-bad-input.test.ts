import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { Agent, request } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { decodeJwt, SignJWT } from 'jose'
import {
  api,
  type RunningBerth,
  type SignedIn,
  signIn,
  startBerth,
  startBerthOnPostgres,
} from './helpers/server.ts'

// Bad input against the real `berth serve`: every endpoint that takes input answers a 4xx with an
// error code and a message naming the field or the problem, writes nothing, and keeps serving.

const SESSION_SECRET = 'e2e-bad-input-session-secret-0123456789'
const MiB = 1024 * 1024

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Body = any

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Body
}

interface RawOptions {
  token?: string | undefined
  /** Sent as is: a string is not JSON-encoded, so malformed JSON can be sent. */
  raw?: string
  /** JSON-encoded. */
  json?: unknown
  contentType?: string | null
  headers?: Record<string, string>
  agent?: Agent | false
}

let berth: RunningBerth
let owner: SignedIn
let existingId: string
let existingKeyId: string
let expiredToken: string

function send(server: RunningBerth, method: string, path: string, options: RawOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = options.raw ?? (options.json === undefined ? undefined : JSON.stringify(options.json))
    const contentType =
      options.contentType === null
        ? undefined
        : (options.contentType ?? (payload ? 'application/json' : undefined))
    const req = request(
      `${server.url}${path}`,
      {
        method,
        agent: options.agent ?? false,
        headers: {
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(contentType ? { 'content-type': contentType } : {}),
          ...(payload === undefined ? {} : { 'content-length': String(Buffer.byteLength(payload)) }),
          ...options.headers,
        },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          text += chunk
        })
        res.on('end', () => {
          let body: Body = text
          if (String(res.headers['content-type'] ?? '').includes('json') && text) body = JSON.parse(text)
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body })
        })
      },
    )
    req.on('upgrade', (res, socket) => {
      socket.destroy()
      resolve({ status: res.statusCode ?? 101, headers: res.headers, body: '' })
    })
    req.on('error', reject)
    req.setTimeout(15_000, () => req.destroy(new Error(`${method} ${path} timed out`)))
    if (payload !== undefined) req.write(payload)
    req.end()
  })
}

const call = (method: string, path: string, options: RawOptions = {}) => send(berth, method, path, options)

const wsHeaders = {
  connection: 'Upgrade',
  upgrade: 'websocket',
  'sec-websocket-version': '13',
  'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
}

/** What a user could see of their account: deployments and API keys. */
async function snapshot(token = owner.token) {
  const list = await api(berth.url, token).get<Body>('/v1/deployments?limit=500')
  assert.equal(list.status, 200)
  const keys = await api(berth.url, token).get<Body>('/v1/api-keys')
  assert.equal(keys.status, 200)
  return {
    total: list.body.total,
    deployments: list.body.items.map((d: Body) => `${d.id} ${d.name}`).sort(),
    keys: keys.body.items.map((k: Body) => `${k.id} ${k.name}`).sort(),
  }
}

function assertRefused(reply: Reply, status: number, code: string, mentions: RegExp, label: string) {
  const shown = `${label}: ${reply.status} ${JSON.stringify(reply.body).slice(0, 300)}`
  assert.equal(reply.status, status, shown)
  assert.equal(reply.body?.error?.code, code, shown)
  assert.equal(typeof reply.body.error.requestId, 'string', shown)
  assert.match(reply.body.error.message, mentions, shown)
  // A 4xx says what is wrong, never how the server is built.
  assert.doesNotMatch(JSON.stringify(reply.body), /select |insert |at .*\.ts:\d+|node_modules/i, shown)
}

before(async () => {
  berth = await startBerth({ env: { BERTH_SESSION_SECRET: SESSION_SECRET, BERTH_LOG_LEVEL: 'warn' } })
  owner = await signIn(berth.url)
  const created = await api(berth.url, owner.token).post<Body>('/v1/deployments', {
    name: 'existing',
    image: 'nginx:1.27',
  })
  assert.equal(created.status, 202, JSON.stringify(created.body))
  existingId = created.body.id
  const key = await api(berth.url, owner.token).post<Body>('/v1/api-keys', { name: 'existing-key' })
  assert.equal(key.status, 201, JSON.stringify(key.body))
  existingKeyId = key.body.id
  // The owner's own session, re-signed with an expiry in the past.
  const claims = decodeJwt(owner.token)
  expiredToken = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(claims.iss!)
    .setSubject(claims.sub!)
    .setJti(claims.jti!)
    .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
    .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
    .sign(new TextEncoder().encode(SESSION_SECRET))
})

after(async () => {
  await berth?.stop()
})

interface Case {
  label: string
  method: string
  path: string
  options?: RawOptions
  status: number
  code: string
  mentions: RegExp
}

const valid = { name: 'should-not-exist', image: 'nginx:1.27' }
const spec = (extra: Record<string, unknown>) => ({ json: { ...valid, ...extra } })
const invalid = (
  label: string,
  path: string,
  options: RawOptions,
  mentions: RegExp,
  method = 'POST',
): Case => ({
  label,
  method,
  path,
  options,
  status: 400,
  code: 'invalid_input',
  mentions,
})

function deploymentCases(): Case[] {
  const p = '/v1/deployments'
  return [
    invalid('malformed JSON', p, { raw: '{"name":' }, /malformed JSON/i),
    invalid('empty body', p, { raw: '' }, /malformed JSON|name/i),
    invalid('JSON null', p, { raw: 'null' }, /expected object/),
    invalid('JSON array', p, { raw: JSON.stringify([valid]) }, /expected object/),
    invalid(
      'no content type',
      p,
      { raw: JSON.stringify(valid), contentType: null },
      /media type|content-type/i,
    ),
    invalid(
      'text/plain',
      p,
      { raw: JSON.stringify(valid), contentType: 'text/plain' },
      /media type|content-type/i,
    ),
    invalid('name is a number', p, { json: { name: 42, image: 'nginx' } }, /name/),
    invalid('name missing', p, { json: { image: 'nginx' } }, /name/),
    invalid('replicas is a string', p, spec({ replicas: '3' }), /replicas/),
    invalid('env is a list', p, spec({ env: ['A=B'] }), /env/),
    invalid('ports is an object', p, spec({ ports: { containerPort: 80 } }), /ports/),
    invalid('command is a string', p, spec({ command: 'sh -c "rm -rf /"' }), /command/),
    invalid('unknown top-level field', p, spec({ privileged: true }), /privileged/),
    invalid('unknown resources field', p, spec({ resources: { cpus: 1, swapMb: 1 } }), /swapMb/),
    invalid('unknown port field', p, spec({ ports: [{ containerPort: 80, hostPort: 80 }] }), /hostPort/),
    invalid(
      'unknown healthCheck field',
      p,
      spec({ healthCheck: { type: 'tcp', port: 80, exec: 'x' } }),
      /exec/,
    ),
    invalid(
      'capability outside the allow-list',
      p,
      spec({ capAdd: [{ capability: 'SYS_ADMIN', reason: 'x' }] }),
      /capability SYS_ADMIN cannot be added/,
    ),
    invalid('upper-case name', p, spec({ name: 'MyApp' }), /name/),
    invalid('underscore name', p, spec({ name: 'my_app' }), /name/),
    invalid('leading dash name', p, spec({ name: '-app' }), /name/),
    invalid('64-character name', p, spec({ name: 'a'.repeat(64) }), /name/),
    invalid('empty image', p, spec({ image: '' }), /image/),
    invalid('shell in image', p, spec({ image: 'nginx; rm -rf /' }), /image/),
    invalid('cpus 1000', p, spec({ resources: { cpus: 1000 } }), /resources\.cpus/),
    invalid('negative cpus', p, spec({ resources: { cpus: -1 } }), /resources\.cpus/),
    invalid('memory 10^9 MB', p, spec({ resources: { memoryMb: 1e9 } }), /resources\.memoryMb/),
    invalid('99 GPUs', p, spec({ resources: { gpus: 99 } }), /resources\.gpus/),
    invalid('port 0', p, spec({ ports: [{ containerPort: 0 }] }), /ports\.0\.containerPort/),
    invalid('port 65536', p, spec({ ports: [{ containerPort: 65536 }] }), /ports\.0\.containerPort/),
    invalid('duplicate port', p, spec({ ports: [{ containerPort: 80 }, { containerPort: 80 }] }), /ports\.1/),
    invalid('replicas 0', p, spec({ replicas: 0 }), /replicas/),
    invalid('replicas 101', p, spec({ replicas: 101 }), /replicas/),
    invalid('bad env name', p, spec({ env: { '1BAD': 'x' } }), /env/),
    // PostgreSQL stores no NUL in text or jsonb: refused at the edge, naming where it is.
    invalid('NUL in an env value', p, spec({ env: { A: 'x\u0000y' } }), /env\.A: NUL/),
    invalid('NUL in an env name', p, spec({ env: { 'A\u0000B': 'x' } }), /NUL/),
    invalid('NUL in a command argument', p, spec({ command: ['sh', '\u0000'] }), /command\.1: NUL/),
    invalid('NUL in a label', p, spec({ labels: { team: 'a\u0000' } }), /labels\.team: NUL/),
    invalid('unknown provider', p, spec({ provider: 'nope' }), /provider/),
    invalid(
      'Idempotency-Key too long',
      p,
      { json: valid, headers: { 'idempotency-key': 'k'.repeat(129) } },
      /idempotency-key/i,
    ),
    {
      label: 'body over 1 MiB',
      method: 'POST',
      path: p,
      options: { json: { ...valid, env: { BIG: 'x'.repeat(MiB + 1) } } },
      status: 413,
      code: 'payload_too_large',
      mentions: /larger than/,
    },
    {
      label: 'expired token',
      method: 'POST',
      path: p,
      options: { json: valid, token: '(expired)' },
      status: 401,
      code: 'unauthorized',
      mentions: /expired/,
    },
    {
      label: 'garbage token',
      method: 'POST',
      path: p,
      options: { json: valid, token: 'garbage' },
      status: 401,
      code: 'unauthorized',
      mentions: /token/,
    },
  ]
}

function queryCases(): Case[] {
  const get = (label: string, path: string, mentions: RegExp) => invalid(label, path, {}, mentions, 'GET')
  const d = () => `/v1/deployments/${existingId}`
  return [
    get('list limit abc', '/v1/deployments?limit=abc', /limit/),
    get('list limit 0', '/v1/deployments?limit=0', /limit/),
    get('list limit 501', '/v1/deployments?limit=501', /limit/),
    get('list offset -1', '/v1/deployments?offset=-1', /offset/),
    get('list status bogus', '/v1/deployments?status=bogus', /status/),
    get('events after -1', `${d()}/events?after=-1`, /after/),
    get('events limit 0', `${d()}/events?limit=0`, /limit/),
    get('events limit 1001', `${d()}/events?limit=1001`, /limit/),
    get('events follow maybe', `${d()}/events?follow=maybe`, /follow/),
    get('logs tail -1', `${d()}/logs?tail=-1`, /tail/),
    get('logs tail 10001', `${d()}/logs?tail=10001`, /tail/),
    get('logs tail abc', `${d()}/logs?tail=abc`, /tail/),
    get('logs follow maybe', `${d()}/logs?follow=maybe`, /follow/),
  ]
}

/** Every route addressed by a deployment id, for missing and malformed ids. */
function idRoutes(id: string): Array<[string, string, Record<string, string>?]> {
  const d = `/v1/deployments/${id}`
  return [
    ['GET', d],
    ['GET', `${d}/events`],
    ['GET', `${d}/events?follow=1`],
    ['GET', `${d}/logs`],
    ['GET', `${d}/ws`],
    ['GET', `${d}/ws`, wsHeaders],
    ['POST', `${d}/stop`],
    ['POST', `${d}/start`],
    ['POST', `${d}/restart`],
    ['DELETE', d],
  ]
}

function authCases(): Case[] {
  const p = '/v1/auth/verify'
  const sig = `0x${'ab'.repeat(65)}`
  return [
    invalid('verify malformed JSON', p, { raw: '{"message": "x",' }, /malformed JSON/i),
    invalid(
      'verify wrong types',
      p,
      { json: { message: 1, signature: 2 } },
      /message.*signature|signature.*message/,
    ),
    invalid('verify unknown field', p, { json: { message: 'x', signature: sig, chainId: 1 } }, /chainId/),
    invalid('verify missing signature', p, { json: { message: 'x' } }, /signature/),
    invalid('verify signature not hex', p, { json: { message: 'x', signature: 'zz' } }, /signature/),
    invalid('verify message not SIWE', p, { json: { message: 'let me in', signature: sig } }, /message/),
    invalid('verify message too long', p, { json: { message: 'x'.repeat(8193), signature: sig } }, /message/),
    {
      label: 'verify body over 1 MiB',
      method: 'POST',
      path: p,
      options: { json: { message: 'x'.repeat(MiB + 1), signature: sig } },
      status: 413,
      code: 'payload_too_large',
      mentions: /larger than/,
    },
  ]
}

function apiKeyCases(): Case[] {
  const p = '/v1/api-keys'
  return [
    invalid('key malformed JSON', p, { raw: '{"name":' }, /malformed JSON/i),
    invalid('key no content type', p, { raw: '{"name":"x"}', contentType: null }, /media type|content-type/i),
    invalid('key empty name', p, { json: { name: '' } }, /name/),
    invalid('key 65-character name', p, { json: { name: 'x'.repeat(65) } }, /name/),
    invalid('key name is a number', p, { json: { name: 42 } }, /name/),
    invalid('key name missing', p, { json: {} }, /name/),
    invalid('key unknown field', p, { json: { name: 'x', scope: 'admin' } }, /scope/),
    invalid('key name with NUL', p, { json: { name: 'a\u0000b' } }, /name: NUL/),
    invalid('key revoke malformed id', `${p}/not-a-uuid`, {}, /id/, 'DELETE'),
    {
      label: 'key revoke missing id',
      method: 'DELETE',
      path: `${p}/${randomUUID()}`,
      status: 404,
      code: 'not_found',
      mentions: /API key/,
    },
    {
      label: 'key body over 1 MiB',
      method: 'POST',
      path: p,
      options: { json: { name: 'x'.repeat(MiB + 1) } },
      status: 413,
      code: 'payload_too_large',
      mentions: /larger than/,
    },
    {
      label: 'key with an expired token',
      method: 'POST',
      path: p,
      options: { json: { name: 'sneaky' }, token: '(expired)' },
      status: 401,
      code: 'unauthorized',
      mentions: /expired/,
    },
  ]
}

async function runCases(cases: Case[]): Promise<string[]> {
  const failures: string[] = []
  for (const c of cases) {
    const token =
      c.options?.token === '(expired)'
        ? expiredToken
        : c.options && 'token' in c.options
          ? c.options.token
          : owner.token
    const reply = await call(c.method, c.path, { ...c.options, token })
    try {
      assertRefused(reply, c.status, c.code, c.mentions, c.label)
    } catch (error) {
      failures.push((error as Error).message.split('\n')[0]!)
    }
  }
  return failures
}

describe('bad input (e2e)', () => {
  it('the owner sees one deployment and one key to start with (the control)', async () => {
    const start = await snapshot()
    assert.equal(start.total, 1)
    assert.deepEqual(start.keys, [`${existingKeyId} existing-key`])
    assert.equal((await call('GET', `/v1/deployments/${existingId}`, { token: owner.token })).status, 200)
  })

  for (const [group, cases] of [
    ['POST /v1/deployments', deploymentCases],
    ['query strings', queryCases],
    ['POST /v1/auth/verify', authCases],
    ['/v1/api-keys', apiKeyCases],
  ] as const) {
    it(`${group}: each bad request gets a 4xx naming the problem, and nothing is written`, async () => {
      const before = await snapshot()
      assert.deepEqual(await runCases(cases()), [])
      assert.deepEqual(await snapshot(), before)
      const health = await api(berth.url).get<Body>('/health')
      assert.equal(health.status, 200)
    })
  }

  it('ids that do not exist answer 404 on every deployment route', async () => {
    const before = await snapshot()
    const wrong: string[] = []
    for (const [method, path, headers] of idRoutes(randomUUID())) {
      const reply = await call(method, path, { token: owner.token, ...(headers ? { headers } : {}) })
      const upgradeRefused = headers === wsHeaders && reply.body === ''
      if (reply.status !== 404 || (!upgradeRefused && reply.body?.error?.code !== 'not_found')) {
        wrong.push(
          `${method} ${path}${headers ? ' (upgrade)' : ''}: ${reply.status} ${JSON.stringify(reply.body)}`,
        )
      }
    }
    assert.deepEqual(wrong, [])
    assert.deepEqual(await snapshot(), before)
  })

  it('malformed ids answer 400 naming the id on every deployment route', async () => {
    const before = await snapshot()
    const wrong: string[] = []
    for (const bad of ['not-a-uuid', '123', `${randomUUID()}x`]) {
      for (const [method, path, headers] of idRoutes(bad)) {
        const reply = await call(method, path, { token: owner.token, ...(headers ? { headers } : {}) })
        const upgradeRefused = headers === wsHeaders && reply.body === ''
        const named = upgradeRefused || /\bid\b/.test(reply.body?.error?.message ?? '')
        if (
          reply.status !== 400 ||
          !named ||
          (!upgradeRefused && reply.body?.error?.code !== 'invalid_input')
        ) {
          wrong.push(
            `${method} ${path}${headers ? ' (upgrade)' : ''}: ${reply.status} ${JSON.stringify(reply.body)}`,
          )
        }
      }
    }
    assert.deepEqual(wrong, [])
    assert.deepEqual(await snapshot(), before)
    assert.equal((await api(berth.url).get<Body>('/health')).status, 200)
  })

  it('a keep-alive connection still works after a 413', async () => {
    // Clients pool connections: the answer to an oversized body must either leave the connection
    // usable or say `Connection: close`, or the client's next request fails for no reason of its own.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      const big = await send(berth, 'POST', '/v1/deployments', {
        token: owner.token,
        json: { ...valid, env: { BIG: 'x'.repeat(MiB + 1) } },
        agent,
      })
      assert.equal(big.status, 413)
      const closes = String(big.headers.connection ?? '').toLowerCase() === 'close'
      const next = await send(berth, 'GET', '/health', { agent }).catch((error: Error) => error)
      assert.ok(
        !(next instanceof Error),
        `the request after a 413 on the same connection failed (${next instanceof Error ? next.message : ''}); the 413 said Connection: ${big.headers.connection}${closes ? '' : ' and yet the server closed it'}`,
      )
      assert.equal(next.status, 200)
    } finally {
      agent.destroy()
    }
  })
})

describe('idempotency and names (e2e)', () => {
  const body = { name: 'idem', image: 'nginx:1.27', replicas: 2 }

  it('same Idempotency-Key and body twice: the same deployment, created once', async () => {
    const before = await snapshot()
    const headers = { 'idempotency-key': 'create-idem-1' }
    const first = await call('POST', '/v1/deployments', { token: owner.token, json: body, headers })
    assert.equal(first.status, 202, JSON.stringify(first.body))
    const second = await call('POST', '/v1/deployments', { token: owner.token, json: body, headers })
    assert.ok(second.status === 202 || second.status === 200, JSON.stringify(second.body))
    assert.equal(second.body.id, first.body.id)
    const after = await snapshot()
    assert.equal(after.total, before.total + 1)
    assert.equal(after.deployments.filter((d: string) => d.endsWith(' idem')).length, 1)
  })

  it('same Idempotency-Key with another body: 409, and nothing written', async () => {
    const before = await snapshot()
    const reply = await call('POST', '/v1/deployments', {
      token: owner.token,
      json: { ...body, replicas: 3 },
      headers: { 'idempotency-key': 'create-idem-1' },
    })
    assertRefused(reply, 409, 'conflict', /Idempotency-Key/i, 'reused key')
    const renamed = await call('POST', '/v1/deployments', {
      token: owner.token,
      json: { ...body, name: 'idem-other' },
      headers: { 'idempotency-key': 'create-idem-1' },
    })
    assertRefused(renamed, 409, 'conflict', /Idempotency-Key/i, 'reused key, other name')
    assert.deepEqual(await snapshot(), before)
  })

  it('an Idempotency-Key belongs to its account', async () => {
    const other = await signIn(berth.url)
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
      token: owner.token,
      json: { name: 'existing', image: 'redis:7' },
    })
    assertRefused(reply, 409, 'conflict', /existing/, 'duplicate name')
    const withKey = await call('POST', '/v1/deployments', {
      token: owner.token,
      json: { name: 'existing', image: 'redis:7' },
      headers: { 'idempotency-key': 'fresh-key-for-a-taken-name' },
    })
    assertRefused(withKey, 409, 'conflict', /existing/, 'duplicate name with a key')
    assert.deepEqual(await snapshot(), before)
    // The refused request did not claim the key either: it still works for a free name.
    const later = await call('POST', '/v1/deployments', {
      token: owner.token,
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
          token: owner.token,
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
