import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before } from 'node:test'
import { exportJWK, type JWK, SignJWT } from 'jose'
import type { Hex } from 'viem'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { createSiweMessage } from 'viem/siwe'
import { configSchema } from '../../src/config/schema.ts'
import type { DatabaseKind } from '../../src/db/client.ts'
import { errorResponse, toBerthError } from '../../src/http/errors.ts'
import { requestId } from '../../src/http/middleware/request-id.ts'
import { requireAuth } from '../../src/http/middleware/require-auth.ts'
import { createRouter } from '../../src/http/openapi.ts'
import { identityRoutes } from '../../src/http/routes/identity.ts'
import { createIdentity } from '../../src/identity/create-identity.ts'
import { createQuotas } from '../../src/quotas/quotas.ts'
import { openTestDatabase, type TestDatabase } from './db.ts'
import { testVault } from './vault.ts'

// The identity routes mounted as the server mounts them, on an app called in-process, with a
// local JWKS endpoint as the external issuer and a clock the tests can move.

export const ADMIN_TOKEN = 'admin-token-for-tests-0123456789'
export const ORIGIN = 'http://localhost:8080'
export const DOMAIN = 'localhost:8080'
export const EXTERNAL_ISSUER = 'https://idp.example'

/** A local JWKS endpoint standing in for an integrator's identity provider. */
export async function startJwksServer(): Promise<{
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

export interface Reply {
  status: number
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
  body: any
}

export async function buildIdentityApp(database: TestDatabase, jwksUrl: string, clock: { offsetMs: number }) {
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

export const newWallet = () => privateKeyToAccount(generatePrivateKey())

export function assertError(reply: Reply, status: number, code: string, pattern?: RegExp) {
  assert.equal(reply.status, status, JSON.stringify(reply.body))
  assert.equal(reply.body.error.code, code)
  if (pattern) assert.match(reply.body.error.message, pattern)
}

export type IdentityApp = Awaited<ReturnType<typeof buildIdentityApp>>
export type JwksServer = Awaited<ReturnType<typeof startJwksServer>>

/**
 * In the calling describe: a JWKS server, a database of `kind` and the identity app on it, with
 * the clock the app reads (move `clock.offsetMs`). Read the fields inside tests: hooks fill them.
 */
export function useIdentityApp(kind: DatabaseKind) {
  const fixture = { clock: { offsetMs: 0 } } as {
    clock: { offsetMs: number }
    jwks: JwksServer
    database: TestDatabase
    app: IdentityApp
  }
  before(async () => {
    fixture.jwks = await startJwksServer()
    fixture.database = await openTestDatabase(kind)
    fixture.app = await buildIdentityApp(fixture.database, fixture.jwks.url, fixture.clock)
  })
  after(async () => {
    await fixture.database.dispose()
    fixture.jwks.close()
  })
  return fixture
}
