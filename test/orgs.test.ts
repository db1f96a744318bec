import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { type Caller, createTestApp, type TestApp } from './helpers/http-app.ts'
import { createOrg } from './helpers/orgs.ts'
import { createStack, type Stack } from './helpers/stack.ts'

// Organisations: wallets that act together. A request with Berth-Org acts for the organisation
// with the caller's role in it; someone who is not a member learns nothing of it (404); a role
// that does not allow a route is told which role would (403); the last owner stays.

const wallet = (n: number) => `0x${n.toString(16).padStart(2, '0').repeat(20)}`
const spec = (name: string) => ({ name, image: 'app:1' })

for (const kind of databaseKinds) {
  describe(`organisations (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp
    let owner: Caller
    let deployer: Caller
    let viewer: Caller
    let stranger: Caller
    const org = { 'berth-org': 'acme' }

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database)
      app = await createTestApp(database, stack)
      owner = await app.user(wallet(0x11))
      stranger = await app.user(wallet(0x44))
      // Members are added by address, before they ever sign in.
      await createOrg(owner, { name: 'Acme', slug: 'acme' }, [
        [wallet(0x22), 'deployer'],
        [wallet(0x33), 'viewer'],
      ])
      deployer = await app.user(wallet(0x22))
      viewer = await app.user(wallet(0x33))
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    it("shares the organisation's deployments between its members, apart from their own", async () => {
      const made = await deployer('POST', '/v1/deployments', spec('web'), org)
      assert.equal(made.status, 202, JSON.stringify(made.body))
      assert.equal(made.body.owner, 'org:acme')
      // The same name is free in each owner: the deployer's own account, the organisation.
      assert.equal((await deployer('POST', '/v1/deployments', spec('web'))).status, 202)
      assert.equal((await owner('POST', '/v1/deployments', spec('web'), org)).status, 409)

      const seen = await viewer('GET', '/v1/deployments', undefined, org)
      assert.deepEqual(
        seen.body.items.map((d: { id: string }) => d.id),
        [made.body.id],
      )
      assert.equal(
        (await viewer('GET', `/v1/deployments/${made.body.id}`)).status,
        404,
        'not the viewer’s own',
      )
      assert.equal((await stranger('GET', `/v1/deployments/${made.body.id}`)).status, 404)
    })

    it('refuses what a role does not allow, naming the role that would', async () => {
      const refused = await viewer('POST', '/v1/deployments', spec('nope'), org)
      assert.equal(refused.status, 403)
      assert.match(
        refused.body.error.message,
        /needs the deployer or admin or owner role in acme \(deployments:write\); you are viewer/,
      )
      const ledger = await deployer('GET', '/v1/ledger', undefined, org)
      assert.equal(ledger.status, 403)
      assert.match(ledger.body.error.message, /billing/)
      assert.equal((await owner('GET', '/v1/ledger', undefined, org)).status, 200)
      // Members are managed by admins and owners only.
      const add = await deployer('POST', '/v1/orgs/acme/members', { address: wallet(0x55), role: 'viewer' })
      assert.equal(add.status, 403)
    })

    it('answers a stranger exactly as if the organisation did not exist', async () => {
      for (const [method, path, headers] of [
        ['GET', '/v1/deployments', org],
        ['GET', '/v1/orgs/acme', {}],
        ['GET', '/v1/orgs/acme/members', {}],
        ['GET', '/v1/deployments', { 'berth-org': 'no-such-org' }],
      ] as const) {
        const reply = await stranger(method, path, undefined, headers)
        assert.equal(reply.status, 404, `${method} ${path}`)
        assert.equal(reply.body.error.message, 'organisation not found')
      }
      const mine = await stranger('GET', '/v1/orgs')
      assert.deepEqual(mine.body.items, [])
    })

    it('keeps at least one owner, and lets only owners make owners', async () => {
      const demote = await owner('PATCH', `/v1/orgs/acme/members/${wallet(0x11)}`, { role: 'admin' })
      assert.equal(demote.status, 409)
      assert.match(demote.body.error.message, /at least one owner/)
      assert.equal((await owner('DELETE', `/v1/orgs/acme/members/${wallet(0x11)}`)).status, 409)

      await owner('PATCH', `/v1/orgs/acme/members/${wallet(0x22)}`, { role: 'admin' })
      const admin = deployer
      const promote = await admin('PATCH', `/v1/orgs/acme/members/${wallet(0x33)}`, { role: 'owner' })
      assert.equal(promote.status, 403, 'an admin cannot make owners')
      assert.equal(
        (await owner('PATCH', `/v1/orgs/acme/members/${wallet(0x22)}`, { role: 'owner' })).status,
        200,
      )
      // Now two owners: one may step down.
      assert.equal(
        (await owner('PATCH', `/v1/orgs/acme/members/${wallet(0x11)}`, { role: 'viewer' })).status,
        200,
      )
      const members = (await admin('GET', '/v1/orgs/acme/members')).body.items as Array<{
        address: string
        role: string
      }>
      assert.deepEqual(Object.fromEntries(members.map((m) => [m.address, m.role])), {
        [wallet(0x11)]: 'viewer',
        [wallet(0x22)]: 'owner',
        [wallet(0x33)]: 'viewer',
      })
    })

    it('takes a taken slug as a conflict, and a bad one as invalid input', async () => {
      assert.equal((await stranger('POST', '/v1/orgs', { name: 'Acme 2', slug: 'acme' })).status, 409)
      assert.equal((await stranger('POST', '/v1/orgs', { name: 'x', slug: 'Not A Slug' })).status, 400)
    })

    it('moves nothing of anyone: existing accounts stay personal, with what they had', async () => {
      const rows = await database.query<{ kind: string; n: string }>(
        `select kind, count(*) as n from accounts group by kind order by kind`,
        [],
      )
      assert.deepEqual(
        rows.map((r) => [r.kind, Number(r.n)]),
        [
          ['org', 1],
          ['personal', 4],
        ],
      )
    })
  })
}
