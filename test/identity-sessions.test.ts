import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { eq } from 'drizzle-orm'
import { configSchema } from '../src/config/schema.ts'
import { accounts, settings } from '../src/db/schema/index.ts'
import { systemSource } from '../src/domain/actor.ts'
import { BerthError } from '../src/domain/errors.ts'
import { createSessions, loadSessionSecret } from '../src/identity/sessions.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { testVault } from './helpers/vault.ts'

async function rejectsWith(promise: Promise<unknown>, pattern: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof BerthError)
    assert.equal(error.code, 'unauthorized')
    assert.match(error.message, pattern)
    return true
  })
}

for (const kind of databaseKinds) {
  describe(`sessions (${kind})`, () => {
    let database: TestDatabase
    let accountId: string
    const config = configSchema.parse({ sessionTtlSeconds: 600 })
    let nowMs = Date.parse('2030-01-01T00:00:00Z')
    const now = () => new Date(nowMs)

    before(async () => {
      database = await openTestDatabase(kind)
      accountId = randomUUID()
      await database.db.insert(accounts).values({ id: accountId, address: '0xabc' })
    })
    after(() => database.dispose())

    it('generates the secret once, and concurrent starts all read the same one', async () => {
      const secrets = await Promise.all(
        Array.from({ length: 10 }, () => loadSessionSecret(database.db, config, testVault(database.db))),
      )
      assert.equal(new Set(secrets).size, 1)
      assert.match(secrets[0]!, /^[A-Za-z0-9_-]{43}$/)
      const rows = await database.db.select().from(settings).where(eq(settings.key, 'session_secret'))
      assert.equal(rows.length, 1)
      assert.ok(rows[0]!.value.startsWith('berth:v1:'), 'kept sealed')
      assert.ok(!rows[0]!.value.includes(secrets[0]!))
    })

    it('seals a secret an older berth kept in the clear, and keeps using it', async () => {
      const legacy = 'L'.repeat(43)
      await database.db.update(settings).set({ value: legacy }).where(eq(settings.key, 'session_secret'))
      assert.equal(await loadSessionSecret(database.db, config, testVault(database.db)), legacy)
      const [row] = await database.db.select().from(settings).where(eq(settings.key, 'session_secret'))
      assert.ok(row!.value.startsWith('berth:v1:'))
      assert.equal(await loadSessionSecret(database.db, config, testVault(database.db)), legacy)
    })

    it("verifies another replica's tokens, and refuses them after revocation", async () => {
      const first = await createSessions({ db: database.db, config, now, vault: testVault(database.db) })
      const second = await createSessions({ db: database.db, config, now, vault: testVault(database.db) })
      const issued = await first.create(accountId)
      assert.equal(issued.expiresAt.getTime(), nowMs + 600_000)
      const verified = await second.verify(issued.token)
      assert.equal(verified.sessionId, issued.sessionId)
      assert.equal(verified.account.id, accountId)
      await second.revoke(accountId, issued.sessionId, systemSource('test'))
      await second.revoke(accountId, issued.sessionId, systemSource('test'))
      await rejectsWith(first.verify(issued.token), /session revoked/)
    })

    it('refuses a token once the clock passes its expiry', async () => {
      const sessions = await createSessions({ db: database.db, config, now, vault: testVault(database.db) })
      const { token } = await sessions.create(accountId)
      nowMs += 599_000
      await sessions.verify(token)
      nowMs += 1_000
      await rejectsWith(sessions.verify(token), /session expired/)
    })

    it('refuses tokens signed with another secret or for another server', async () => {
      const ours = await createSessions({ db: database.db, config, now, vault: testVault(database.db) })
      const otherSecret = await createSessions({
        db: database.db,
        config: { ...config, sessionSecret: 'x'.repeat(32) },
        now,
        vault: testVault(database.db),
      })
      await rejectsWith(ours.verify((await otherSecret.create(accountId)).token), /signature is invalid/)
      const otherServer = await createSessions({
        db: database.db,
        config: { ...config, publicUrl: 'https://elsewhere.example' },
        now,
        vault: testVault(database.db),
      })
      await rejectsWith(ours.verify((await otherServer.create(accountId)).token), /claim "iss" is invalid/)
    })

    it('uses a configured secret as it is', async () => {
      const configured = { ...config, sessionSecret: 's'.repeat(40) }
      assert.equal(await loadSessionSecret(database.db, configured, testVault(database.db)), 's'.repeat(40))
    })
  })
}
