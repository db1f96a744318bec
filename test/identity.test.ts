import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { sql } from 'drizzle-orm'
import { exportJWK, type JWK, SignJWT } from 'jose'
import type { Hex } from 'viem'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { createSiweMessage } from 'viem/siwe'
import { configSchema } from '../src/config/schema.ts'
import { queryRows } from '../src/db/client.ts'
import { errorResponse, toBerthError } from '../src/http/errors.ts'
import { requestId } from '../src/http/middleware/request-id.ts'
import { requireAuth } from '../src/http/middleware/require-auth.ts'
import { createRouter } from '../src/http/openapi.ts'
import { identityRoutes } from '../src/http/routes/identity.ts'
import { createIdentity } from '../src/identity/create-identity.ts'
import { createQuotas } from '../src/quotas/quotas.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { testVault } from './helpers/vault.ts'

// The identity routes through HTTP, as the server mounts them, on both databases.

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789'
const ORIGIN = 'http://localhost:8080'
const DOMAIN = 'localhost:8080'
const EXTERNAL_ISSUER = 'https://idp.example'

/** A local JWKS endpoint standing in for an integrator's identity provider. */
async function startJwksServer(): Promise<{
  url: string
  sign(claims: object): Promise<string>
  close(): void
}> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'test-key', alg: 'ES256', use: 'sig' }
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ keys: [jwk] }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    sign: (claims) =>
      new SignJWT({ ...claims })
        .setProtectedHeader({ alg: 'ES256', kid: 'test-key' })
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey),
    close: () => server.close(),
  }
}

interface Reply {
  status: number
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
  body: any
}

async function buildApp(database: TestDatabase, jwksUrl: string, clock: { offsetMs: number }) {
  const config = configSchema.parse({
    port: 8080,
    adminToken: ADMIN_TOKEN,
    sessionTtlSeconds: 3600,
    externalJwt: { issuer: EXTERNAL_ISSUER, jwksUrl, audience: 'berth' },
  })
  const now = () => new Date(Date.now() + clock.offsetMs)
  const quotas = createQuotas(database.db, config.quotas)
  const identity = await createIdentity({
    db: database.db,
    config,
    quotas,
    now,
    vault: testVault(database.db),
  })
  const app = createRouter()
  app.use('*', requestId())
  app.use('/v1/*', requireAuth(identity.authenticator))
  app.route('/', identityRoutes(identity))
  app.onError((error, c) => errorResponse(c, toBerthError(error)))

  async function call(
    method: string,
    path: string,
    options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = { ...options.headers }
    if (options.token) headers.authorization = `Bearer ${options.token}`
    if (options.body !== undefined) headers['content-type'] = 'application/json'
    const res = await app.request(path, {
      method,
      headers,
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    })
    return { status: res.status, body: await res.json() }
  }

  async function signedMessage(
    wallet: PrivateKeyAccount,
    fields: Partial<Parameters<typeof createSiweMessage>[0]> = {},
  ): Promise<{ message: string; signature: Hex }> {
    const { body } = await call('POST', '/v1/auth/nonce')
    const message = createSiweMessage({
      domain: DOMAIN,
      address: wallet.address,
      uri: ORIGIN,
      chainId: 1,
      nonce: body.nonce,
      version: '1',
      issuedAt: now(),
      statement: 'Sign in to berth',
      ...fields,
    })
    return { message, signature: await wallet.signMessage({ message }) }
  }

  async function signIn(wallet: PrivateKeyAccount): Promise<string> {
    const reply = await call('POST', '/v1/auth/verify', { body: await signedMessage(wallet) })
    assert.equal(reply.status, 200, JSON.stringify(reply.body))
    return reply.body.token
  }

  const openApiPaths = () =>
    Object.keys(
      app.getOpenAPI31Document({ openapi: '3.1.0', info: { title: 'berth', version: 'test' } }).paths ?? {},
    )

  return { call, signedMessage, signIn, openApiPaths }
}

const newWallet = () => privateKeyToAccount(generatePrivateKey())

function assertError(reply: Reply, status: number, code: string, pattern?: RegExp) {
  assert.equal(reply.status, status, JSON.stringify(reply.body))
  assert.equal(reply.body.error.code, code)
  if (pattern) assert.match(reply.body.error.message, pattern)
}

let jwks: Awaited<ReturnType<typeof startJwksServer>>
before(async () => {
  jwks = await startJwksServer()
})
after(() => jwks.close())

for (const kind of databaseKinds) {
  describe(`identity over HTTP (${kind})`, () => {
    let database: TestDatabase
    let app: Awaited<ReturnType<typeof buildApp>>
    const clock = { offsetMs: 0 }

    before(async () => {
      database = await openTestDatabase(kind)
      app = await buildApp(database, jwks.url, clock)
    })
    after(() => database.dispose())

    describe('SIWE sign-in', () => {
      it('signs a wallet in and the token authenticates it', async () => {
        const wallet = newWallet()
        const nonce = await app.call('POST', '/v1/auth/nonce')
        assert.equal(nonce.status, 200)
        assert.match(nonce.body.nonce, /^[a-zA-Z0-9]{8,}$/)
        assert.equal(nonce.body.domain, DOMAIN)

        const reply = await app.call('POST', '/v1/auth/verify', { body: await app.signedMessage(wallet) })
        assert.equal(reply.status, 200, JSON.stringify(reply.body))
        assert.equal(reply.body.address, wallet.address.toLowerCase())
        assert.ok(new Date(reply.body.expiresAt).getTime() > Date.now() + 3500_000)

        const me = await app.call('GET', '/v1/auth/me', { token: reply.body.token })
        assert.equal(me.status, 200)
        assert.deepEqual(me.body, {
          accountId: reply.body.accountId,
          address: wallet.address.toLowerCase(),
          kind: 'session',
        })
        // Signing in again maps to the same account.
        const again = await app.call('GET', '/v1/auth/me', { token: await app.signIn(wallet) })
        assert.equal(again.body.accountId, reply.body.accountId)
      })

      it('refuses a message for another domain', async () => {
        const body = await app.signedMessage(newWallet(), { domain: 'evil.example' })
        const reply = await app.call('POST', '/v1/auth/verify', { body })
        assertError(reply, 401, 'unauthorized', /domain "evil\.example" is not this server's domain/)
      })

      it('refuses a message whose URI is on another origin', async () => {
        const body = await app.signedMessage(newWallet(), { uri: 'https://evil.example/login' })
        assertError(await app.call('POST', '/v1/auth/verify', { body }), 401, 'unauthorized', /URI/)
      })

      it('refuses a reused nonce', async () => {
        const body = await app.signedMessage(newWallet())
        assert.equal((await app.call('POST', '/v1/auth/verify', { body })).status, 200)
        const reply = await app.call('POST', '/v1/auth/verify', { body })
        assertError(reply, 401, 'unauthorized', /nonce is unknown, expired or already used/)
      })

      it('refuses a nonce it never issued', async () => {
        const wallet = newWallet()
        const message = createSiweMessage({
          domain: DOMAIN,
          address: wallet.address,
          uri: ORIGIN,
          chainId: 1,
          nonce: 'madeUpNonce123',
          version: '1',
        })
        const body = { message, signature: await wallet.signMessage({ message }) }
        assertError(await app.call('POST', '/v1/auth/verify', { body }), 401, 'unauthorized', /nonce/)
      })

      it('refuses an expired message', async () => {
        const body = await app.signedMessage(newWallet(), {
          issuedAt: new Date(Date.now() - 3600_000),
          expirationTime: new Date(Date.now() - 1800_000),
        })
        assertError(await app.call('POST', '/v1/auth/verify', { body }), 401, 'unauthorized', /expired at/)
      })

      it('refuses a message that is not valid yet', async () => {
        const body = await app.signedMessage(newWallet(), { notBefore: new Date(Date.now() + 3600_000) })
        assertError(
          await app.call('POST', '/v1/auth/verify', { body }),
          401,
          'unauthorized',
          /not valid before/,
        )
      })

      it('refuses a message altered after signing', async () => {
        const { message, signature } = await app.signedMessage(newWallet())
        const tampered = message.replace('Sign in to berth', 'Sign in to berth and transfer everything')
        assert.notEqual(tampered, message)
        const reply = await app.call('POST', '/v1/auth/verify', { body: { message: tampered, signature } })
        assertError(reply, 401, 'unauthorized', /signature does not match address/)
      })

      it('refuses a signature from another wallet', async () => {
        const { message } = await app.signedMessage(newWallet())
        const signature = await newWallet().signMessage({ message })
        const reply = await app.call('POST', '/v1/auth/verify', { body: { message, signature } })
        assertError(reply, 401, 'unauthorized', /signed by another wallet/)
      })

      it('names the field of a malformed request', async () => {
        const reply = await app.call('POST', '/v1/auth/verify', {
          body: { message: 'hello', signature: 'nothex', extra: 1 },
        })
        assertError(reply, 400, 'invalid_input', /signature/)
        const notSiwe = await app.call('POST', '/v1/auth/verify', {
          body: { message: 'hello', signature: '0x00' },
        })
        assertError(notSiwe, 400, 'invalid_input', /not an EIP-4361 message/)
      })

      it('turns 50 concurrent uses of one signed message into exactly one session', async () => {
        const wallet = newWallet()
        const body = await app.signedMessage(wallet)
        const replies = await Promise.all(
          Array.from({ length: 50 }, () => app.call('POST', '/v1/auth/verify', { body })),
        )
        const statuses = replies.map((r) => r.status)
        assert.equal(statuses.filter((s) => s === 200).length, 1, `statuses: ${statuses.join(',')}`)
        assert.equal(statuses.filter((s) => s === 401).length, 49)
        for (const reply of replies.filter((r) => r.status === 401)) {
          assert.match(reply.body.error.message, /nonce is unknown, expired or already used/)
        }
        const [row] = await queryRows<{ n: number }>(
          database.db,
          sql`select count(*)::int as n from sessions s join accounts a on a.id = s.account_id
              where a.address = ${wallet.address.toLowerCase()}`,
        )
        assert.equal(row?.n, 1)
      })
    })

    describe('sessions', () => {
      it('logout revokes the session', async () => {
        const token = await app.signIn(newWallet())
        assert.deepEqual((await app.call('POST', '/v1/auth/logout', { token })).body, { ok: true })
        assertError(await app.call('GET', '/v1/auth/me', { token }), 401, 'unauthorized', /session revoked/)
      })

      it('refuses an expired session token', async () => {
        const token = await app.signIn(newWallet())
        clock.offsetMs = 3601_000
        try {
          assertError(await app.call('GET', '/v1/auth/me', { token }), 401, 'unauthorized', /session expired/)
        } finally {
          clock.offsetMs = 0
        }
        assert.equal((await app.call('GET', '/v1/auth/me', { token })).status, 200)
      })

      it('refuses a missing, malformed or forged token, saying which', async () => {
        assertError(await app.call('GET', '/v1/auth/me'), 401, 'unauthorized', /missing bearer token/)
        assertError(
          await app.call('GET', '/v1/auth/me', { token: 'garbage' }),
          401,
          'unauthorized',
          /not an API key/,
        )
        const token = await app.signIn(newWallet())
        const [header, payload] = token.split('.')
        const forged = `${header}.${payload}.${'A'.repeat(43)}`
        assertError(await app.call('GET', '/v1/auth/me', { token: forged }), 401, 'unauthorized', /signature/)
      })

      it('takes the access_token query parameter only where a browser cannot send a header', async () => {
        const token = await app.signIn(newWallet())
        const query = `access_token=${encodeURIComponent(token)}`
        // An EventSource asks for text/event-stream; a WebSocket upgrade is on a /ws path.
        const stream = await app.call('GET', `/v1/auth/me?${query}`, {
          headers: { accept: 'text/event-stream' },
        })
        assert.equal(stream.status, 200)
        assert.equal(stream.body.kind, 'session')
        // Anywhere else it is ignored: a token in a URL ends up in logs and history.
        assertError(
          await app.call('GET', `/v1/auth/me?${query}`),
          401,
          'unauthorized',
          /missing bearer token/,
        )
      })
    })

    describe('API keys', () => {
      it('creates, lists, authenticates with and deletes a key', async () => {
        const token = await app.signIn(newWallet())
        const created = await app.call('POST', '/v1/api-keys', { token, body: { name: 'ci' } })
        assert.equal(created.status, 201, JSON.stringify(created.body))
        const { id, key, prefix } = created.body
        assert.match(key, /^berth_[A-Za-z0-9_-]{43}$/)
        assert.equal(prefix, key.slice(0, 12))

        const listed = await app.call('GET', '/v1/api-keys', { token })
        assert.equal(listed.status, 200)
        assert.deepEqual(
          listed.body.items.map((k: { id: string; name: string; prefix: string }) => [
            k.id,
            k.name,
            k.prefix,
          ]),
          [[id, 'ci', prefix]],
        )
        assert.ok(!JSON.stringify(listed.body).includes(key))

        const me = await app.call('GET', '/v1/auth/me', { token: key })
        assert.equal(me.status, 200)
        assert.equal(me.body.kind, 'api_key')
        // A key cannot make keys, nor revoke them: only a signed-in person can.
        assertError(
          await app.call('POST', '/v1/api-keys', { token: key, body: { name: 'spawned' } }),
          403,
          'forbidden',
          /with a wallet session, not with an API key/,
        )
        assertError(await app.call('DELETE', `/v1/api-keys/${id}`, { token: key }), 403, 'forbidden')
        assert.equal((await app.call('GET', '/v1/api-keys', { token: key })).body.items.length, 1)
        assert.equal(
          (await app.call('GET', '/v1/api-keys', { token })).body.items[0].lastUsedAt !== null,
          true,
        )

        const stored = await queryRows<Record<string, unknown>>(database.db, sql`select * from api_keys`)
        assert.ok(stored.length > 0)
        assert.ok(!JSON.stringify(stored).includes(key.slice(12)), 'the plain key is not stored')

        assert.deepEqual((await app.call('DELETE', `/v1/api-keys/${id}`, { token })).body, { ok: true })
        assertError(
          await app.call('GET', '/v1/auth/me', { token: key }),
          401,
          'unauthorized',
          /API key revoked/,
        )
        assert.deepEqual((await app.call('GET', '/v1/api-keys', { token })).body, { items: [] })
        assertError(await app.call('DELETE', `/v1/api-keys/${id}`, { token }), 404, 'not_found')
      })

      it("answers 404 for another account's key", async () => {
        const owner = await app.signIn(newWallet())
        const other = await app.signIn(newWallet())
        const { body } = await app.call('POST', '/v1/api-keys', { token: owner, body: { name: 'mine' } })
        assertError(await app.call('DELETE', `/v1/api-keys/${body.id}`, { token: other }), 404, 'not_found')
        assert.equal((await app.call('GET', '/v1/auth/me', { token: body.key })).status, 200)
      })

      it('validates names and ids, and refuses unknown keys', async () => {
        const token = await app.signIn(newWallet())
        const long = await app.call('POST', '/v1/api-keys', { token, body: { name: 'x'.repeat(65) } })
        assertError(long, 400, 'invalid_input', /name/)
        const extra = await app.call('POST', '/v1/api-keys', { token, body: { name: 'a', admin: true } })
        assertError(extra, 400, 'invalid_input')
        assertError(
          await app.call('DELETE', '/v1/api-keys/not-a-uuid', { token }),
          400,
          'invalid_input',
          /id/,
        )
        const unknown = await app.call('GET', '/v1/auth/me', { token: `berth_${'x'.repeat(43)}` })
        assertError(unknown, 401, 'unauthorized', /unknown API key/)
      })
    })

    it('documents every route in the OpenAPI document', () => {
      assert.deepEqual(app.openApiPaths().sort(), [
        '/v1/api-keys',
        '/v1/api-keys/{id}',
        '/v1/auth/logout',
        '/v1/auth/me',
        '/v1/auth/nonce',
        '/v1/auth/verify',
      ])
    })

    describe('admin token', () => {
      it('authenticates as admin, which owns no API keys and has no session', async () => {
        const me = await app.call('GET', '/v1/auth/me', { token: ADMIN_TOKEN })
        assert.deepEqual(me.body, { accountId: null, address: null, kind: 'admin' })
        const keys = await app.call('GET', '/v1/api-keys', { token: ADMIN_TOKEN })
        assertError(keys, 403, 'forbidden')
        assertError(await app.call('POST', '/v1/auth/logout', { token: ADMIN_TOKEN }), 400, 'invalid_input')
        const wrong = await app.call('GET', '/v1/auth/me', { token: `${ADMIN_TOKEN}x` })
        assertError(wrong, 401, 'unauthorized')
      })
    })

    describe('external issuer', () => {
      it('maps a valid token to one account per subject', async () => {
        const token = await jwks.sign({ iss: EXTERNAL_ISSUER, sub: `user-${kind}`, aud: 'berth' })
        const first = await app.call('GET', '/v1/auth/me', { token })
        assert.equal(first.status, 200, JSON.stringify(first.body))
        assert.equal(first.body.kind, 'external_jwt')
        assert.equal(first.body.address, null)
        const again = await jwks.sign({ iss: EXTERNAL_ISSUER, sub: `user-${kind}`, aud: 'berth' })
        assert.equal(
          (await app.call('GET', '/v1/auth/me', { token: again })).body.accountId,
          first.body.accountId,
        )
        const keys = await app.call('POST', '/v1/api-keys', { token, body: { name: 'from-idp' } })
        assert.equal(keys.status, 201)
      })

      it('refuses a token from an issuer it does not trust', async () => {
        const token = await jwks.sign({ iss: 'https://other.example', sub: 'user', aud: 'berth' })
        const reply = await app.call('GET', '/v1/auth/me', { token })
        assertError(reply, 401, 'unauthorized', /issuer "https:\/\/other\.example" is not trusted/)
      })
    })
  })
}
