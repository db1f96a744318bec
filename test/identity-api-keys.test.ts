import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { eq } from 'drizzle-orm'
import { accounts, apiKeys as apiKeysTable } from '../src/db/schema/index.ts'
import { systemSource } from '../src/domain/actor.ts'
import { BerthError } from '../src/domain/errors.ts'
import { createApiKeys, hashApiKey, isApiKey } from '../src/identity/api-keys.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'

for (const kind of databaseKinds) {
  describe(`API keys (${kind})`, () => {
    let database: TestDatabase
    let nowMs = Date.parse('2030-01-01T00:00:00Z')
    const now = () => new Date(nowMs)
    const newAccount = async () => {
      const id = randomUUID()
      await database.db.insert(accounts).values({ id, address: `0x${id.replaceAll('-', '')}` })
      return id
    }

    before(async () => {
      database = await openTestDatabase(kind)
    })
    after(() => database.dispose())

    it('stores only the hash and a short prefix', async () => {
      const keys = createApiKeys({ db: database.db, now })
      const created = await keys.create(await newAccount(), { name: 'deploy bot' }, systemSource('test'))
      assert.ok(isApiKey(created.key))
      const [row] = await database.db.select().from(apiKeysTable).where(eq(apiKeysTable.id, created.id))
      assert.equal(row?.keyHash, hashApiKey(created.key))
      assert.match(row!.keyHash, /^[0-9a-f]{64}$/)
      assert.equal(row?.prefix, created.key.slice(0, 12))
    })

    it('lists live keys newest first and revokes only its own', async () => {
      const keys = createApiKeys({ db: database.db, now })
      const owner = await newAccount()
      const older = await keys.create(owner, { name: 'older' }, systemSource('test'))
      nowMs += 1000
      const newer = await keys.create(owner, { name: 'newer' }, systemSource('test'))
      assert.deepEqual(
        (await keys.list(owner)).map((k) => k.name),
        ['newer', 'older'],
      )
      await assert.rejects(keys.revoke(await newAccount(), older.id, systemSource('test')), {
        code: 'not_found',
      })
      await keys.revoke(owner, older.id, systemSource('test'))
      assert.deepEqual(
        (await keys.list(owner)).map((k) => k.id),
        [newer.id],
      )
      await assert.rejects(keys.authenticate(older.key), /API key revoked/)
    })

    it('records use at most once a minute', async () => {
      const keys = createApiKeys({ db: database.db, now })
      const owner = await newAccount()
      const { key, id } = await keys.create(owner, { name: 'reader' }, systemSource('test'))
      const lastUsed = async () =>
        (await database.db.select().from(apiKeysTable).where(eq(apiKeysTable.id, id)))[0]?.lastUsedAt
      const first = nowMs
      assert.equal((await keys.authenticate(key)).account.id, owner)
      assert.equal((await lastUsed())?.getTime(), first)
      nowMs += 30_000
      await keys.authenticate(key)
      assert.equal((await lastUsed())?.getTime(), first)
      nowMs += 30_000
      await keys.authenticate(key)
      assert.equal((await lastUsed())?.getTime(), nowMs)
    })

    it('refuses a key it never issued', async () => {
      const keys = createApiKeys({ db: database.db, now })
      await assert.rejects(keys.authenticate('berth_nope'), (error: unknown) => {
        assert.ok(error instanceof BerthError)
        assert.equal(error.code, 'unauthorized')
        assert.equal(error.message, 'unknown API key')
        return true
      })
    })
  })
}
