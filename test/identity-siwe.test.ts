import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { eq } from 'drizzle-orm'
import type { Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { createSiweMessage } from 'viem/siwe'
import { configSchema } from '../src/config/schema.ts'
import { authNonces } from '../src/db/schema/index.ts'
import { BerthError } from '../src/domain/errors.ts'
import { createSessions } from '../src/identity/sessions.ts'
import { createSiwe, type Siwe } from '../src/identity/siwe.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { testVault } from './helpers/vault.ts'

// Time-dependent SIWE rules, driven by an injected clock; the HTTP-level cases are in
// test/identity-http-siwe.test.ts.

const config = configSchema.parse({
  publicUrl: 'https://berth.example/app',
  siwe: { clockSkewSeconds: 60, nonceTtlSeconds: 300 },
})

async function rejectsWith(promise: Promise<unknown>, code: string, pattern: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof BerthError, String(error))
    assert.equal(error.code, code)
    assert.match(error.message, pattern)
    return true
  })
}

for (const kind of databaseKinds) {
  describe(`SIWE (${kind})`, () => {
    let database: TestDatabase
    let siwe: Siwe
    let nowMs = Date.parse('2030-01-01T00:00:00Z')
    const now = () => new Date(nowMs)

    before(async () => {
      database = await openTestDatabase(kind)
      const sessions = await createSessions({ db: database.db, config, now, vault: testVault(database.db) })
      siwe = createSiwe({ db: database.db, config, sessions, now })
    })
    after(() => database.dispose())

    async function sign(fields: Partial<Parameters<typeof createSiweMessage>[0]> = {}, nonce?: string) {
      const wallet = privateKeyToAccount(generatePrivateKey())
      const issued = await siwe.issueNonce()
      const message = createSiweMessage({
        domain: issued.domain,
        address: wallet.address,
        uri: `${issued.uri}/login`,
        chainId: 8453,
        nonce: nonce ?? issued.nonce,
        version: '1',
        issuedAt: now(),
        ...fields,
      })
      return { wallet, message, signature: await wallet.signMessage({ message }) }
    }

    it('tells clients the domain and URI to sign for', async () => {
      const issued = await siwe.issueNonce()
      assert.equal(issued.domain, 'berth.example')
      assert.equal(issued.uri, 'https://berth.example')
      assert.equal(issued.expiresAt.getTime(), nowMs + 300_000)
    })

    it('tolerates clock skew on issuedAt, and no more', async () => {
      const ahead = await sign({ issuedAt: new Date(nowMs + 59_000) })
      const signedIn = await siwe.verify(ahead.message, ahead.signature, {})
      assert.equal(signedIn.address, ahead.wallet.address.toLowerCase())
      const tooFar = await sign({ issuedAt: new Date(nowMs + 61_000) })
      await rejectsWith(
        siwe.verify(tooFar.message, tooFar.signature, {}),
        'unauthorized',
        /issued in the future/,
      )
    })

    it('tolerates clock skew on expirationTime and notBefore', async () => {
      const justExpired = await sign({ expirationTime: new Date(nowMs - 30_000) })
      await siwe.verify(justExpired.message, justExpired.signature, {})
      const almostValid = await sign({ notBefore: new Date(nowMs + 30_000) })
      await siwe.verify(almostValid.message, almostValid.signature, {})
    })

    it('refuses a nonce whose time to live has passed', async () => {
      const signed = await sign()
      nowMs += 300_000
      await rejectsWith(
        siwe.verify(signed.message, signed.signature, {}),
        'unauthorized',
        /nonce is unknown, expired/,
      )
    })

    it('prunes expired nonces when issuing new ones', async () => {
      const { nonce } = await siwe.issueNonce()
      nowMs += 301_000
      await siwe.issueNonce()
      assert.deepEqual(await database.db.select().from(authNonces).where(eq(authNonces.nonce, nonce)), [])
    })

    it('does not burn the nonce when the signature is wrong', async () => {
      const signed = await sign()
      const wrong = (signed.signature.slice(0, -2) + (signed.signature.endsWith('1b') ? '1c' : '1b')) as Hex
      await rejectsWith(siwe.verify(signed.message, wrong, {}), 'unauthorized', /signature does not match/)
      await rejectsWith(siwe.verify(signed.message, '0x1234', {}), 'unauthorized', /signature does not match/)
      await siwe.verify(signed.message, signed.signature, {})
    })

    it('refuses another scheme, and a URI on another origin', async () => {
      const http = await sign({ scheme: 'http' })
      await rejectsWith(siwe.verify(http.message, http.signature, {}), 'unauthorized', /scheme "http"/)
      const elsewhere = await sign({ uri: 'https://berth.example.evil.test/' })
      await rejectsWith(siwe.verify(elsewhere.message, elsewhere.signature, {}), 'unauthorized', /URI/)
    })

    it('accepts only the chain IDs the operator lists, when it lists any', async () => {
      const sessions = await createSessions({ db: database.db, config, now, vault: testVault(database.db) })
      const limited = createSiwe({
        db: database.db,
        config: configSchema.parse({ ...config, siwe: { ...config.siwe, chainIds: [1, 10] } }),
        sessions,
        now,
      })
      const { message, signature } = await sign({ chainId: 8453 })
      await rejectsWith(
        limited.verify(message, signature, {}),
        'unauthorized',
        /chain ID 8453 is not accepted here \(accepted: 1, 10\)/,
      )
      const other = await sign({ chainId: 10 })
      assert.match((await limited.verify(other.message, other.signature, {})).token, /^ey/)
    })

    it('calls a message that is not EIP-4361 invalid input', async () => {
      await rejectsWith(
        siwe.verify('please let me in', '0x00', {}),
        'invalid_input',
        /not an EIP-4361 message/,
      )
    })
  })
}
