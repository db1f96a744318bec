import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { decodeJwt, SignJWT } from 'jose'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { createSiweMessage } from 'viem/siwe'
import { api, type RunningBerth, signIn, startBerth, startBerthOnPostgres } from './helpers/server.ts'

// Sign-In with Ethereum against the real `berth serve` process: every way a sign-in can be wrong
// is refused with 401 (or 400 when the message is not SIWE at all), and refusals burn no nonce.

const SESSION_SECRET = 'e2e-siwe-session-secret-0123456789abcdef'
const MINUTE = 60_000

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Body = any

let berth: RunningBerth
let domain: string
let origin: string

before(async () => {
  // A known session secret lets the test forge tokens (expired ones) exactly as the server would.
  berth = await startBerth({
    env: {
      BERTH_SESSION_SECRET: SESSION_SECRET,
      BERTH_LOG_LEVEL: 'warn',
      // These tests sign in hundreds of times from one address on purpose (replays, races);
      // the limit itself is tested in e2e-limits.test.ts.
      BERTH_RATE_LIMITS__SIGN_IN_PER_MINUTE: '100000',
      BERTH_RATE_LIMITS__SIGN_IN_BURST: '100000',
    },
  })
  const url = new URL(berth.url)
  domain = url.host
  origin = url.origin
})

after(async () => {
  await berth?.stop()
})

async function nonce(): Promise<string> {
  const response = await api(berth.url).post<Body>('/v1/auth/nonce')
  assert.equal(response.status, 200, JSON.stringify(response.body))
  assert.match(response.body.nonce, /^[a-zA-Z0-9]{8,}$/)
  return response.body.nonce
}

interface MessageOptions {
  nonce?: string
  domain?: string
  uri?: string
  address?: `0x${string}`
  issuedAt?: Date
  expirationTime?: Date
  notBefore?: Date
  chainId?: number
}

async function message(account: PrivateKeyAccount, options: MessageOptions = {}): Promise<string> {
  const now = new Date()
  return createSiweMessage({
    domain: options.domain ?? domain,
    uri: options.uri ?? origin,
    address: options.address ?? account.address,
    version: '1',
    chainId: options.chainId ?? 1,
    nonce: options.nonce ?? (await nonce()),
    issuedAt: options.issuedAt ?? now,
    statement: 'Sign in to berth',
    ...(options.expirationTime ? { expirationTime: options.expirationTime } : {}),
    ...(options.notBefore ? { notBefore: options.notBefore } : {}),
  })
}

function verify(text: string, signature: string) {
  return api(berth.url).post<Body>('/v1/auth/verify', { message: text, signature })
}

function assertError(
  response: { status: number; body: Body },
  status: number,
  code: string,
  pattern?: RegExp,
) {
  assert.equal(response.status, status, JSON.stringify(response.body))
  assert.equal(response.body.error?.code, code, JSON.stringify(response.body))
  assert.equal(typeof response.body.error.requestId, 'string')
  if (pattern) assert.match(response.body.error.message, pattern)
}

function wallet(): PrivateKeyAccount {
  return privateKeyToAccount(generatePrivateKey())
}

describe('SIWE sign-in (e2e)', () => {
  it('signs in with a good message and the token identifies the wallet', async () => {
    const nonceResponse = await api(berth.url).post<Body>('/v1/auth/nonce')
    assert.equal(nonceResponse.status, 200)
    assert.equal(nonceResponse.body.domain, domain, 'the server tells clients which domain to sign')
    assert.equal(nonceResponse.body.uri, origin)
    assert.ok(Date.parse(nonceResponse.body.expiresAt) > Date.now())

    const account = wallet()
    const text = await message(account, {
      nonce: nonceResponse.body.nonce,
      expirationTime: new Date(Date.now() + 10 * MINUTE),
    })
    const response = await verify(text, await account.signMessage({ message: text }))
    assert.equal(response.status, 200, JSON.stringify(response.body))
    assert.equal(response.body.address, account.address.toLowerCase())
    assert.equal(typeof response.body.token, 'string')
    assert.ok(Date.parse(response.body.expiresAt) > Date.now())

    const me = await api(berth.url, response.body.token).get<Body>('/v1/auth/me')
    assert.equal(me.status, 200)
    assert.equal(me.body.kind, 'session')
    assert.equal(me.body.address, account.address.toLowerCase())
  })

  it('signs the same wallet into the same account twice, with distinct sessions', async () => {
    const first = await signIn(berth.url)
    const second = await signIn(berth.url, first.privateKey)
    const meFirst = await api(berth.url, first.token).get<Body>('/v1/auth/me')
    const meSecond = await api(berth.url, second.token).get<Body>('/v1/auth/me')
    assert.equal(meFirst.body.accountId, meSecond.body.accountId)
    assert.notEqual(first.token, second.token)
  })

  it('refuses a message for another domain, without burning the nonce', async () => {
    const account = wallet()
    const sharedNonce = await nonce()
    const wrong = await message(account, { nonce: sharedNonce, domain: 'evil.example' })
    assertError(
      await verify(wrong, await account.signMessage({ message: wrong })),
      401,
      'unauthorized',
      /domain/,
    )

    const right = await message(account, { nonce: sharedNonce })
    const response = await verify(right, await account.signMessage({ message: right }))
    assert.equal(response.status, 200, 'a refused message must not consume the nonce')
  })

  it('refuses a message whose URI is on another origin', async () => {
    const account = wallet()
    const text = await message(account, { uri: 'https://evil.example/login' })
    assertError(await verify(text, await account.signMessage({ message: text })), 401, 'unauthorized', /URI/)
  })

  it('refuses a reused nonce: the second verify of the same message is 401', async () => {
    const account = wallet()
    const text = await message(account)
    const signature = await account.signMessage({ message: text })
    const first = await verify(text, signature)
    assert.equal(first.status, 200, JSON.stringify(first.body))
    assertError(await verify(text, signature), 401, 'unauthorized', /nonce/)
  })

  it('refuses a nonce the server never issued', async () => {
    const account = wallet()
    const text = await message(account, { nonce: 'a'.repeat(32) })
    assertError(
      await verify(text, await account.signMessage({ message: text })),
      401,
      'unauthorized',
      /nonce/,
    )
  })

  it('refuses an expired message, without burning the nonce', async () => {
    const account = wallet()
    const sharedNonce = await nonce()
    const text = await message(account, {
      nonce: sharedNonce,
      issuedAt: new Date(Date.now() - 30 * MINUTE),
      expirationTime: new Date(Date.now() - 10 * MINUTE),
    })
    assertError(
      await verify(text, await account.signMessage({ message: text })),
      401,
      'unauthorized',
      /expired/,
    )
    const fresh = await message(account, { nonce: sharedNonce })
    assert.equal((await verify(fresh, await account.signMessage({ message: fresh }))).status, 200)
  })

  it('refuses a message that is not valid yet (notBefore in the future)', async () => {
    const account = wallet()
    const text = await message(account, { notBefore: new Date(Date.now() + 10 * MINUTE) })
    assertError(
      await verify(text, await account.signMessage({ message: text })),
      401,
      'unauthorized',
      /before/,
    )
  })

  it('refuses a message issued in the future', async () => {
    const account = wallet()
    const text = await message(account, { issuedAt: new Date(Date.now() + 30 * MINUTE) })
    assertError(
      await verify(text, await account.signMessage({ message: text })),
      401,
      'unauthorized',
      /future/,
    )
  })

  it('refuses a message altered after signing', async () => {
    const account = wallet()
    const signed = await message(account)
    const signature = await account.signMessage({ message: signed })
    const tampered = signed.replace('Sign in to berth', 'Sign in to berth and pay 100 ETH')
    assert.notEqual(tampered, signed)
    assertError(await verify(tampered, signature), 401, 'unauthorized', /signature/)

    // Swapping in another (fresh) nonce is tampering too, and that nonce stays usable.
    const otherNonce = await nonce()
    const nonceSwapped = signed.replace(/Nonce: \S+/, `Nonce: ${otherNonce}`)
    assertError(await verify(nonceSwapped, signature), 401, 'unauthorized', /signature/)
    const honest = await message(account, { nonce: otherNonce })
    assert.equal((await verify(honest, await account.signMessage({ message: honest }))).status, 200)
  })

  it('refuses a message signed by another wallet than the one it names', async () => {
    const victim = wallet()
    const attacker = wallet()
    const text = await message(victim)
    assertError(await verify(text, await attacker.signMessage({ message: text })), 401, 'unauthorized')
    // And the victim's account gains no session: the victim's own sign-in still works normally.
    const honest = await message(victim)
    assert.equal((await verify(honest, await victim.signMessage({ message: honest }))).status, 200)
  })

  it('refuses a malformed signature and a message that is not SIWE, naming the field', async () => {
    const account = wallet()
    const text = await message(account)
    const short = await verify(text, '0x1234')
    assertError(short, 401, 'unauthorized')
    const notHex = await verify(text, 'not-a-signature')
    assertError(notHex, 400, 'invalid_input', /signature/)
    const notSiwe = await verify(
      'please let me in',
      await account.signMessage({ message: 'please let me in' }),
    )
    assertError(notSiwe, 400, 'invalid_input', /message/)
  })

  it('lets exactly one of 50 concurrent verifies of one signed message through', async () => {
    const account = wallet()
    const text = await message(account)
    const signature = await account.signMessage({ message: text })
    const responses = await Promise.all(Array.from({ length: 50 }, () => verify(text, signature)))
    const statuses = responses.map((r) => r.status)
    assert.equal(statuses.filter((s) => s === 200).length, 1, JSON.stringify(statuses))
    assert.equal(statuses.filter((s) => s === 401).length, 49, JSON.stringify(statuses))
    for (const response of responses.filter((r) => r.status === 401)) {
      assert.equal(response.body.error.code, 'unauthorized')
    }
    const winner = responses.find((r) => r.status === 200)!
    assert.equal((await api(berth.url, winner.body.token).get<Body>('/v1/auth/me')).status, 200)
  })
})

describe('session tokens (e2e)', () => {
  /** Re-signs a real session token's claims with the server's secret and the given expiry. */
  async function forge(token: string, exp: number, claims: Record<string, unknown> = {}): Promise<string> {
    const real = decodeJwt(token)
    return new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(real.iss!)
      .setSubject(String(claims.sub ?? real.sub))
      .setJti(String(claims.jti ?? real.jti))
      .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
      .setExpirationTime(exp)
      .sign(new TextEncoder().encode(SESSION_SECRET))
  }

  it('accepts a token forged with the right secret and a future expiry (the control)', async () => {
    const { token } = await signIn(berth.url)
    const forged = await forge(token, Math.floor(Date.now() / 1000) + 600)
    assert.equal((await api(berth.url, forged).get<Body>('/v1/auth/me')).status, 200)
  })

  it('refuses an expired token', async () => {
    const { token } = await signIn(berth.url)
    const expired = await forge(token, Math.floor(Date.now() / 1000) - 3600)
    const response = await api(berth.url, expired).get<Body>('/v1/auth/me')
    assertError(response, 401, 'unauthorized', /expired/)
    assertError(await api(berth.url, expired).get<Body>('/v1/deployments'), 401, 'unauthorized')
  })

  it('refuses a token for a session that does not exist', async () => {
    const { token } = await signIn(berth.url)
    const forged = await forge(token, Math.floor(Date.now() / 1000) + 600, {
      jti: '00000000-0000-4000-8000-000000000000',
    })
    assertError(await api(berth.url, forged).get<Body>('/v1/auth/me'), 401, 'unauthorized')
  })

  it('refuses garbage, a token signed with another secret, and a bad Authorization header', async () => {
    const { token } = await signIn(berth.url)
    for (const bad of ['garbage', 'a.b.c', `${token}x`, `berth_${'x'.repeat(43)}`]) {
      assertError(await api(berth.url, bad).get<Body>('/v1/auth/me'), 401, 'unauthorized')
    }
    const real = decodeJwt(token)
    const otherSecret = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(real.iss!)
      .setSubject(real.sub!)
      .setJti(real.jti!)
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode('not-the-server-secret-0123456789abcdef'))
    assertError(await api(berth.url, otherSecret).get<Body>('/v1/auth/me'), 401, 'unauthorized', /signature/)
    const basic = await api(berth.url).get<Body>('/v1/auth/me', { authorization: `Basic ${token}` })
    assertError(basic, 401, 'unauthorized')
  })

  it('refuses the token after logout, and only that session ends', async () => {
    const first = await signIn(berth.url)
    const second = await signIn(berth.url, first.privateKey)
    const logout = await api(berth.url, first.token).post<Body>('/v1/auth/logout')
    assert.equal(logout.status, 200, JSON.stringify(logout.body))
    assertError(await api(berth.url, first.token).get<Body>('/v1/auth/me'), 401, 'unauthorized', /revoked/)
    assertError(await api(berth.url, first.token).get<Body>('/v1/deployments'), 401, 'unauthorized')
    assertError(await api(berth.url, first.token).post<Body>('/v1/auth/logout'), 401, 'unauthorized')
    assert.equal((await api(berth.url, second.token).get<Body>('/v1/auth/me')).status, 200)
  })

  it('still answers /health after all of the above', async () => {
    const response = await api(berth.url).get<Body>('/health')
    assert.equal(response.status, 200)
    assert.equal(response.body.status, 'ok')
  })
})

describe('SIWE races on a PostgreSQL server (e2e)', () => {
  // PGlite runs one statement at a time; a server runs them truly concurrently, which is where
  // the single-use nonce and find-or-create of the account have to hold.
  let server: RunningBerth

  before(async () => {
    server = await startBerthOnPostgres({
      env: {
        BERTH_LOG_LEVEL: 'warn',
        BERTH_RATE_LIMITS__SIGN_IN_PER_MINUTE: '100000',
        BERTH_RATE_LIMITS__SIGN_IN_BURST: '100000',
      },
    })
  })

  after(async () => {
    await server?.stop()
  })

  async function signedOnServer(account: PrivateKeyAccount) {
    const issued = await api(server.url).post<Body>('/v1/auth/nonce')
    assert.equal(issued.status, 200)
    const text = createSiweMessage({
      domain: issued.body.domain,
      uri: issued.body.uri,
      address: account.address,
      version: '1',
      chainId: 1,
      nonce: issued.body.nonce,
      issuedAt: new Date(),
    })
    return { text, signature: await account.signMessage({ message: text }) }
  }

  it('lets exactly one of 50 concurrent verifies of one signed message through', async () => {
    const { text, signature } = await signedOnServer(wallet())
    const responses = await Promise.all(
      Array.from({ length: 50 }, () =>
        api(server.url).post<Body>('/v1/auth/verify', { message: text, signature }),
      ),
    )
    const statuses = responses.map((r) => r.status)
    assert.equal(statuses.filter((s) => s === 200).length, 1, JSON.stringify(statuses))
    assert.equal(statuses.filter((s) => s === 401).length, 49, JSON.stringify(statuses))
  })

  it('signs one new wallet in 10 times at once into a single account', async () => {
    const account = wallet()
    const signed = await Promise.all(Array.from({ length: 10 }, () => signedOnServer(account)))
    const responses = await Promise.all(
      signed.map(({ text, signature }) =>
        api(server.url).post<Body>('/v1/auth/verify', { message: text, signature }),
      ),
    )
    assert.deepEqual(
      responses.map((r) => r.status),
      Array(10).fill(200),
      JSON.stringify(responses.map((r) => r.body)),
    )
    const accountIds = new Set(responses.map((r) => r.body.accountId))
    assert.equal(accountIds.size, 1, `one wallet became ${accountIds.size} accounts`)
  })
})
