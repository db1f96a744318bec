import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { Agent } from 'node:http'
import { after, before, describe, it } from 'node:test'
import {
  type BadInputFixture,
  type Case,
  invalid,
  MiB,
  runCases,
  startBadInputFixture,
} from './helpers/bad-input-fixture.ts'
import { type Body, type RawOptions, send, wsHeaders } from './helpers/raw-http.ts'
import { api } from './helpers/server.ts'

// Bad input against the real `berth serve`: every endpoint that takes input answers a 4xx with an
// error code and a message naming the field or the problem, writes nothing, and keeps serving.
// This file: the deployment routes (bodies, query strings, ids); the sign-in and API-key routes
// are in e2e-bad-input-identity.test.ts.

let fixture: BadInputFixture

before(async () => {
  fixture = await startBadInputFixture()
})

after(async () => {
  await fixture?.stop()
})

const call = (method: string, path: string, options: RawOptions = {}) => fixture.call(method, path, options)
const snapshot = () => fixture.snapshot()

const valid = { name: 'should-not-exist', image: 'nginx:1.27' }
const spec = (extra: Record<string, unknown>) => ({ json: { ...valid, ...extra } })

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
  const d = () => `/v1/deployments/${fixture.existingId}`
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

describe('bad input (e2e)', () => {
  it('the owner sees one deployment and one key to start with (the control)', async () => {
    const start = await snapshot()
    assert.equal(start.total, 1)
    assert.deepEqual(start.keys, [`${fixture.existingKeyId} existing-key`])
    assert.equal(
      (await call('GET', `/v1/deployments/${fixture.existingId}`, { token: fixture.owner.token })).status,
      200,
    )
  })

  for (const [group, cases] of [
    ['POST /v1/deployments', deploymentCases],
    ['query strings', queryCases],
  ] as const) {
    it(`${group}: each bad request gets a 4xx naming the problem, and nothing is written`, async () => {
      const before = await snapshot()
      assert.deepEqual(await runCases(fixture, cases()), [])
      assert.deepEqual(await snapshot(), before)
      const health = await api(fixture.berth.url).get<Body>('/health')
      assert.equal(health.status, 200)
    })
  }

  it('ids that do not exist answer 404 on every deployment route', async () => {
    const before = await snapshot()
    const wrong: string[] = []
    for (const [method, path, headers] of idRoutes(randomUUID())) {
      const reply = await call(method, path, { token: fixture.owner.token, ...(headers ? { headers } : {}) })
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
        const reply = await call(method, path, {
          token: fixture.owner.token,
          ...(headers ? { headers } : {}),
        })
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
    assert.equal((await api(fixture.berth.url).get<Body>('/health')).status, 200)
  })

  it('a keep-alive connection still works after a 413', async () => {
    // Clients pool connections: the answer to an oversized body must either leave the connection
    // usable or say `Connection: close`, or the client's next request fails for no reason of its own.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      const big = await send(fixture.berth, 'POST', '/v1/deployments', {
        token: fixture.owner.token,
        json: { ...valid, env: { BIG: 'x'.repeat(MiB + 1) } },
        agent,
      })
      assert.equal(big.status, 413)
      const closes = String(big.headers.connection ?? '').toLowerCase() === 'close'
      const next = await send(fixture.berth, 'GET', '/health', { agent }).catch((error: Error) => error)
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
