import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { type Caller, createTestApp, type TestApp } from './helpers/http-app.ts'
import { createStack, type Stack } from './helpers/stack.ts'

// Scoped API keys: a key does only what its scopes say; an organisation's key acts for the
// organisation without Berth-Org, never beyond the role its maker has now, and stops when the
// maker leaves; an expired key is refused.

const wallet = (n: number) => `0x${n.toString(16).padStart(2, '0').repeat(20)}`
const org = { 'berth-org': 'keyed' }

for (const kind of databaseKinds) {
  describe(`scoped API keys (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp
    let ownerSession: Caller
    let adminSession: Caller

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database)
      app = await createTestApp(database, stack)
      const owner = await app.user(wallet(0x61))
      await app.user(wallet(0x62))
      assert.equal((await owner('POST', '/v1/orgs', { name: 'Keyed', slug: 'keyed' })).status, 201)
      await owner('POST', '/v1/orgs/keyed/members', { address: wallet(0x62), role: 'admin' })
      ownerSession = await app.session(wallet(0x61))
      adminSession = await app.session(wallet(0x62))
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    const keyFor = async (session: Caller, body: Record<string, unknown>, headers = {}) => {
      const made = await session('POST', '/v1/api-keys', { name: 'k', ...body }, headers)
      assert.equal(made.status, 201, JSON.stringify(made.body))
      return app.bearer(made.body.key as string)
    }

    it('refuses what a personal key was not given the scope for, naming the scope', async () => {
      const reader = await keyFor(ownerSession, { scopes: ['deployments:read'] })
      assert.equal((await reader('GET', '/v1/deployments')).status, 200)
      const write = await reader('POST', '/v1/deployments', { name: 'x', image: 'app:1' })
      assert.equal(write.status, 403)
      assert.match(write.body.error.message, /does not have the deployments:write scope/)
      assert.equal((await reader('GET', '/v1/balance')).status, 403)
    })

    it("acts for the organisation without the header, within its maker's role, and stops when the maker leaves", async () => {
      const deployKey = await keyFor(adminSession, { scopes: ['deployments:read', 'deployments:write'] }, org)
      const made = await deployKey('POST', '/v1/deployments', { name: 'by-key', image: 'app:1' })
      assert.equal(made.status, 202, JSON.stringify(made.body))
      assert.equal(made.body.owner, 'org:keyed')
      assert.equal(
        (await deployKey('GET', '/v1/deployments', undefined, { 'berth-org': 'other' })).status,
        403,
      )

      const listed = (await ownerSession('GET', '/v1/api-keys', undefined, org)).body.items
      assert.equal(listed[0].createdBy, wallet(0x62))
      assert.deepEqual(listed[0].scopes, ['deployments:read', 'deployments:write'])

      // Demoted to viewer: the key can still read, but no longer write.
      await ownerSession('PATCH', `/v1/orgs/keyed/members/${wallet(0x62)}`, { role: 'viewer' })
      assert.equal((await deployKey('GET', '/v1/deployments')).status, 200)
      const demoted = await deployKey('POST', '/v1/deployments', { name: 'later', image: 'app:1' })
      assert.equal(demoted.status, 403)
      assert.match(demoted.body.error.message, /you are viewer/)
      // A viewer cannot give what it does not have.
      const beyond = await adminSession(
        'POST',
        '/v1/api-keys',
        { name: 'x', scopes: ['payments:write'] },
        org,
      )
      assert.equal(beyond.status, 403)

      // Gone from the organisation: the key stops.
      await ownerSession('DELETE', `/v1/orgs/keyed/members/${wallet(0x62)}`)
      const stopped = await deployKey('GET', '/v1/deployments')
      assert.equal(stopped.status, 401)
      assert.match(stopped.body.error.message, /no longer in the organisation/)
    })

    it('refuses an expired key, and an expiry in the past', async () => {
      const past = await ownerSession('POST', '/v1/api-keys', {
        name: 'old',
        expiresAt: '2001-01-01T00:00:00Z',
      })
      assert.equal(past.status, 400)
      const soon = new Date(Date.now() + 3_600_000).toISOString()
      const short = await keyFor(ownerSession, { name: 'short', expiresAt: soon })
      assert.equal((await short('GET', '/v1/deployments')).status, 200)
      // Its time comes (moved, rather than waited for).
      await database.query(
        `update api_keys set expires_at = now() - interval '1 second' where name = 'short'`,
        [],
      )
      const expired = await short('GET', '/v1/deployments')
      assert.equal(expired.status, 401)
      assert.match(expired.body.error.message, /expired/)
    })
  })
}
