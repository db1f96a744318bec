import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { errorCodes } from '../src/domain/errors.ts'
import { openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { createTestApp, type TestApp } from './helpers/http-app.ts'
import { type FuzzRequest, operationsOf, requestsFor } from './helpers/openapi-fuzz.ts'
import { createStack, type Stack } from './helpers/stack.ts'

// Every operation of berth's API, from its own /openapi.json, called by two accounts with
// generated requests, valid and hostile alike: nothing answers 5xx, every refusal is in the error
// envelope, and neither account ever sees anything of the other's (its deployment ids, its wallet).
// fast-check shrinks a failure to the smallest request that shows it.

const RUNS = 20_000
const ADMIN_TOKEN = 'fuzz-test-admin-token-0123456789'
const wallets = { a: `0x${'a7'.repeat(20)}`, b: `0x${'b8'.repeat(20)}` } as const
type Who = keyof typeof wallets
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g

describe('API fuzz (schema-driven, two accounts)', () => {
  let database: TestDatabase
  let stack: Stack
  let app: TestApp
  const keys: Record<Who, string> = { a: '', b: '' }
  /** What each account has been shown as its own: ids from its answers. */
  const seen: Record<Who, Set<string>> = { a: new Set(), b: new Set() }
  /**
   * Ids and wallets each caller has named in a request itself: its audit log records its refused
   * requests, path and all, so what it sent may come back to it later without anything having leaked.
   */
  const named: Record<Who, Set<string>> = { a: new Set(), b: new Set() }
  const counts = { requests: 0, byStatus: new Map<number, number>() }

  before(async () => {
    database = await openTestDatabase('postgres')
    stack = await createStack(database, {
      flags: {
        adminToken: ADMIN_TOKEN,
        // Quotas would refuse every create once the first few dozen landed; the fuzz wants the
        // handlers behind them. (Quotas have their own tests.)
        quotas: {
          deployments: 1e6,
          replicas: 1e6,
          hostPorts: 1e6,
          cpus: 1e6,
          memoryMb: 1e9,
          diskMb: 1e9,
          volumes: 1e6,
        },
        // The fuzz is one client sending as fast as it can: limits would answer most of it 429.
        rateLimits: {
          signInPerMinute: 1e6,
          signInBurst: 1e6,
          noncesPerMinute: 1e6,
          writesPerMinute: 1e6,
          writeBurst: 1e6,
        },
      },
    })
    app = await createTestApp(database, stack)
    for (const who of ['a', 'b'] as const) {
      keys[who] = await app.userKey(wallets[who])
      // Each starts with deployments of its own, so there is something to see and to leak.
      for (const name of ['one', 'two']) {
        const reply = await send(who, {
          method: 'POST',
          url: '/v1/deployments',
          headers: {},
          body: JSON.stringify({ name: `${who}-${name}`, image: 'app:1', ports: [{ containerPort: 80 }] }),
        })
        assert.equal(reply.status, 202, reply.text)
      }
    }
  })
  after(async () => {
    await stack.stop()
    await database.dispose()
  })

  async function send(
    who: Who,
    request: FuzzRequest,
  ): Promise<{ status: number; text: string; type: string }> {
    const hasBody = request.body !== undefined && request.method !== 'GET'
    const response = await app.fetch(request.url, {
      method: request.method,
      headers: {
        authorization: `Bearer ${keys[who]}`,
        ...(hasBody ? { 'content-type': 'application/json' } : {}),
        ...request.headers,
      },
      ...(hasBody ? { body: request.body } : {}),
    })
    const type = response.headers.get('content-type') ?? ''
    // Only whole answers are read: a stream (SSE, followed logs) is left after its status.
    let text = ''
    if (type.includes('json')) text = await response.text()
    else await response.body?.cancel()
    counts.requests++
    counts.byStatus.set(response.status, (counts.byStatus.get(response.status) ?? 0) + 1)
    // An id the caller sent itself is not its own for having come back (its audit log repeats
    // the paths of its refused requests, the other's ids included).
    for (const id of text.match(UUID) ?? [])
      if (response.status < 300 && !named[who].has(id)) seen[who].add(id)
    return { status: response.status, text, type }
  }

  it(`answers ${RUNS} generated requests without a 5xx, in the error envelope, and never across accounts`, {
    timeout: 600_000,
  }, async () => {
    const doc = JSON.parse(
      (await send('a', { method: 'GET', url: '/openapi.json', headers: {}, body: undefined })).text,
    )
    const operations = operationsOf(doc)
    assert.ok(operations.length >= 25, `the document lists the API (${operations.length} operations)`)
    const ids = () => [...seen.a, ...seen.b]
    const pathValue = (name: string, schema: { format?: string }) =>
      name === 'address'
        ? fc.constantFrom(wallets.a, wallets.b, `0x${'cd'.repeat(20)}`, 'not-an-address', '0x')
        : schema.format === 'uuid' || name === 'id'
          ? fc.oneof(
              fc.constantFrom(...ids()),
              fc.uuid(),
              fc.constantFrom('not-a-uuid', '00000000-0000-0000-0000-000000000000', '..'),
            )
          : fc.oneof(
              fc.string({ maxLength: 80 }),
              fc.constantFrom('1', '0', '-1', '99999999999999999999', wallets.a),
            )
    const request = fc.tuple(
      fc.constantFrom<Who>('a', 'b'),
      // Operations that take a body have the most to get wrong: they are tried more often.
      fc.oneof(
        ...operations.map((operation) => ({
          weight: operation.bodySchema ? 4 : 1,
          arbitrary: requestsFor(operation, doc, pathValue),
        })),
      ),
    )

    await fc.assert(
      fc.asyncProperty(request, async ([who, req]) => {
        const other: Who = who === 'a' ? 'b' : 'a'
        const asked = `${req.url} ${req.body ?? ''}`
        for (const id of asked.match(UUID) ?? []) named[who].add(id)
        if (asked.toLowerCase().includes(wallets[other])) named[who].add(wallets[other])
        const reply = await send(who, noFollow(req))
        assert.ok(reply.status < 500, `${req.method} ${req.url} answered ${reply.status}: ${reply.text}`)
        if (reply.status >= 400) {
          const body = JSON.parse(reply.text)
          assert.ok(errorCodes.includes(body.error?.code), `an error code: ${reply.text}`)
          assert.equal(typeof body.error.message, 'string')
          assert.equal(typeof body.error.requestId, 'string')
        }
        // Nothing of the other account: never in an answer that succeeded, and in a refusal only
        // what the caller sent itself (a refusal may name the input it refuses).
        const sent = reply.status >= 400 ? `${req.url} ${req.body ?? ''}` : ''
        for (const id of reply.text.match(UUID) ?? []) {
          assert.ok(
            !seen[other].has(id) || sent.includes(id) || named[who].has(id),
            `${who} was shown ${other}'s ${id}: ${reply.text}`,
          )
        }
        if (!sent.includes(wallets[other])) {
          // The one place a wallet the caller sent itself comes back: the target (the path) of its
          // own audit entries. Anywhere else the other's wallet is a leak.
          const shown = named[who].has(wallets[other])
            ? reply.text.replace(/"target":"[^"]*"/g, '')
            : reply.text
          assert.ok(!shown.toLowerCase().includes(wallets[other]), `${who} was shown ${other}'s wallet`)
        }
      }),
      { numRuns: RUNS, endOnFailure: true },
    )
    assert.ok(counts.requests >= RUNS)
    const ok = [...counts.byStatus].filter(([status]) => status < 300).reduce((n, [, c]) => n + c, 0)
    assert.ok(
      ok > RUNS / 20,
      `enough requests get through to exercise the handlers (${ok} of ${counts.requests})`,
    )
  })
})

/** Streams that follow (events, logs) would never end: the fuzz asks for what is there now. */
function noFollow(request: FuzzRequest): FuzzRequest {
  return { ...request, url: request.url.replace(/([?&]follow=)(1|true)/, '$1false') }
}
