import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { PrivateKeyAccount } from 'viem/accounts'
import { createSiweMessage } from 'viem/siwe'
import { api, type RunningBerth, signIn } from './helpers/server.ts'
import { assertError, type Body, startSiweBerth, wallet } from './helpers/siwe-berth.ts'

// Sign-In with Ethereum against the real `berth serve` process: every way a sign-in can be wrong
// is refused with 401 (or 400 when the message is not SIWE at all), and refusals burn no nonce.
// Session tokens are in e2e-session-tokens.test.ts, races on PostgreSQL in e2e-siwe-races.test.ts.

const MINUTE = 60_000

let berth: RunningBerth
let domain: string
let origin: string

before(async () => {
  berth = await startSiweBerth()
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
