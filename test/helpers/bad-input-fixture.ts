import assert from 'node:assert/strict'
import { decodeJwt, SignJWT } from 'jose'
import { type Body, type RawOptions, type RawReply, send } from './raw-http.ts'
import { api, type RunningBerth, type SignedIn, signIn, startBerth } from './server.ts'

// The real `berth serve` that the bad-input and idempotency e2e tests throw requests at: one
// owner with one deployment ("existing") and one API key ("existing-key"), so that a request
// that should write nothing can be seen to have written nothing. And how they check a refusal.

const SESSION_SECRET = 'e2e-bad-input-session-secret-0123456789'

export const MiB = 1024 * 1024

export interface BadInputFixture {
  berth: RunningBerth
  owner: SignedIn
  existingId: string
  existingKeyId: string
  /** The owner's own session, re-signed with an expiry in the past. */
  expiredToken: string
  call(method: string, path: string, options?: RawOptions): Promise<RawReply>
  /** What a user could see of their account: deployments and API keys. */
  snapshot(token?: string): Promise<{ total: number; deployments: string[]; keys: string[] }>
  stop(): Promise<void>
}

export async function startBadInputFixture(): Promise<BadInputFixture> {
  const berth = await startBerth({ env: { BERTH_SESSION_SECRET: SESSION_SECRET, BERTH_LOG_LEVEL: 'warn' } })
  const owner = await signIn(berth.url)
  const created = await api(berth.url, owner.token).post<Body>('/v1/deployments', {
    name: 'existing',
    image: 'nginx:1.27',
  })
  assert.equal(created.status, 202, JSON.stringify(created.body))
  const key = await api(berth.url, owner.token).post<Body>('/v1/api-keys', { name: 'existing-key' })
  assert.equal(key.status, 201, JSON.stringify(key.body))
  const claims = decodeJwt(owner.token)
  const expiredToken = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(claims.iss!)
    .setSubject(claims.sub!)
    .setJti(claims.jti!)
    .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
    .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
    .sign(new TextEncoder().encode(SESSION_SECRET))

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

  return {
    berth,
    owner,
    existingId: created.body.id,
    existingKeyId: key.body.id,
    expiredToken,
    call: (method, path, options = {}) => send(berth, method, path, options),
    snapshot,
    stop: () => berth.stop(),
  }
}

export function assertRefused(
  reply: RawReply,
  status: number,
  code: string,
  mentions: RegExp,
  label: string,
) {
  const shown = `${label}: ${reply.status} ${JSON.stringify(reply.body).slice(0, 300)}`
  assert.equal(reply.status, status, shown)
  assert.equal(reply.body?.error?.code, code, shown)
  assert.equal(typeof reply.body.error.requestId, 'string', shown)
  assert.match(reply.body.error.message, mentions, shown)
  // A 4xx says what is wrong, never how the server is built.
  assert.doesNotMatch(JSON.stringify(reply.body), /select |insert |at .*\.ts:\d+|node_modules/i, shown)
}

/** One bad request and the refusal it must get. A token of '(expired)' sends the expired one. */
export interface Case {
  label: string
  method: string
  path: string
  options?: RawOptions
  status: number
  code: string
  mentions: RegExp
}

export const invalid = (
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

/** Sends each case as the owner (unless it names a token) and answers the ones refused wrongly. */
export async function runCases(fixture: BadInputFixture, cases: Case[]): Promise<string[]> {
  const failures: string[] = []
  for (const c of cases) {
    const token =
      c.options?.token === '(expired)'
        ? fixture.expiredToken
        : c.options && 'token' in c.options
          ? c.options.token
          : fixture.owner.token
    const reply = await fixture.call(c.method, c.path, { ...c.options, token })
    try {
      assertRefused(reply, c.status, c.code, c.mentions, c.label)
    } catch (error) {
      failures.push((error as Error).message.split('\n')[0]!)
    }
  }
  return failures
}
