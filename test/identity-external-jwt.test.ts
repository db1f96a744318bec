import assert from 'node:assert/strict'
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { exportJWK, SignJWT } from 'jose'
import { BerthError } from '../src/domain/errors.ts'
import { createExternalJwtVerifier, type ExternalJwtVerifier } from '../src/identity/external-jwt.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'

// A real JWKS endpoint on loopback stands in for an integrator's identity provider.

const ISSUER = 'https://idp.example'
const T0 = Date.parse('2030-01-01T00:00:00Z')

const key = generateKeyPairSync('rsa', { modulusLength: 2048 })
const strangerKey = generateKeyPairSync('rsa', { modulusLength: 2048 })

function sign(
  claims: Record<string, unknown>,
  options: { privateKey?: KeyObject; kid?: string; exp?: number | null } = {},
) {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? 'k1' })
    .setIssuedAt(T0 / 1000)
  if (options.exp !== null) jwt.setExpirationTime(options.exp ?? T0 / 1000 + 300)
  return jwt.sign(options.privateKey ?? key.privateKey)
}

async function rejectsWith(promise: Promise<unknown>, code: string, pattern: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof BerthError, String(error))
    assert.equal(error.code, code)
    assert.match(error.message, pattern)
    return true
  })
}

let server: Server
let jwksUrl: string
before(async () => {
  const jwk = { ...(await exportJWK(key.publicKey)), kid: 'k1', alg: 'RS256' }
  server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ keys: [jwk] }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`
})
after(() => server.close())

for (const kind of databaseKinds) {
  describe(`external JWT (${kind})`, () => {
    let database: TestDatabase
    let verifier: ExternalJwtVerifier
    let nowMs = T0
    before(async () => {
      database = await openTestDatabase(kind)
      verifier = createExternalJwtVerifier({
        db: database.db,
        settings: { issuer: ISSUER, jwksUrl, audience: 'berth' },
        now: () => new Date(nowMs),
        clockSkewSeconds: 30,
      })
    })
    after(() => database.dispose())

    it('maps issuer and subject to one account', async () => {
      const account = await verifier.verify(await sign({ iss: ISSUER, sub: 'alice', aud: 'berth' }))
      assert.equal(account.externalSubject, `${ISSUER}|alice`)
      assert.equal(account.address, null)
      const again = await verifier.verify(await sign({ iss: ISSUER, sub: 'alice', aud: ['berth', 'x'] }))
      assert.equal(again.id, account.id)
    })

    it('refuses a wrong audience or issuer, and a token without a subject', async () => {
      await rejectsWith(
        verifier.verify(await sign({ iss: ISSUER, sub: 'a', aud: 'other' })),
        'unauthorized',
        /"aud"/,
      )
      await rejectsWith(
        verifier.verify(await sign({ iss: 'https://evil.example', sub: 'a', aud: 'berth' })),
        'unauthorized',
        /"iss"/,
      )
      await rejectsWith(verifier.verify(await sign({ iss: ISSUER, aud: 'berth' })), 'unauthorized', /"sub"/)
    })

    it('refuses a token that never expires', async () => {
      await rejectsWith(
        verifier.verify(await sign({ iss: ISSUER, sub: 'a', aud: 'berth' }, { exp: null })),
        'unauthorized',
        /"exp"/,
      )
    })

    it('refuses a token signed with a key the issuer does not publish', async () => {
      const claims = { iss: ISSUER, sub: 'a', aud: 'berth' }
      const forged = await sign(claims, { privateKey: strangerKey.privateKey })
      await rejectsWith(verifier.verify(forged), 'unauthorized', /signature is invalid/)
      const unknownKid = await sign(claims, { privateKey: strangerKey.privateKey, kid: 'k2' })
      await rejectsWith(verifier.verify(unknownKid), 'unauthorized', /not in the issuer's key set/)
    })

    it('honours expiry with the configured clock skew', async () => {
      const token = await sign({ iss: ISSUER, sub: 'bob', aud: 'berth' })
      nowMs = T0 + 320_000
      await verifier.verify(token)
      nowMs = T0 + 331_000
      await rejectsWith(verifier.verify(token), 'unauthorized', /external token expired/)
      nowMs = T0
    })

    it("answers 503 when the issuer's key set cannot be fetched", async () => {
      // A port that was free a moment ago: the connection is refused at once, no timeout involved.
      const probe = createServer()
      await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
      const { port } = probe.address() as AddressInfo
      await new Promise((resolve) => probe.close(resolve))
      const unreachable = createExternalJwtVerifier({
        db: database.db,
        settings: { issuer: ISSUER, jwksUrl: `http://127.0.0.1:${port}/jwks.json` },
        now: () => new Date(T0),
        clockSkewSeconds: 0,
      })
      const token = await sign({ iss: ISSUER, sub: 'a' })
      await rejectsWith(unreachable.verify(token), 'provider_unavailable', /signing keys/)
    })
  })
}
