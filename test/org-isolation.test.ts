import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { type OrgRole, orgRoles, roleScopes, type Scope } from '../src/domain/roles.ts'
import { type RouteScope, routeScopes } from '../src/http/route-scopes.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { type Caller, createTestApp, type TestApp } from './helpers/http-app.ts'
import { createOrg } from './helpers/orgs.ts'
import { createStack, type Stack } from './helpers/stack.ts'

// Every route of the API, called for an organisation by someone who is not a member and by a
// member in each role: a stranger learns nothing (404, like a missing organisation), a role
// without the route's scope is refused naming the role it needs (403), and a role with it is let
// through (whatever the route then says of the request itself). Nothing refused changes anything.

const wallet = (n: number) => `0x${n.toString(16).padStart(2, '0').repeat(20)}`
const ORG = 'iso'
const TARGET = wallet(0x6f)

/** Routes that name the organisation in their path: what each needs of the caller there. */
const orgPathNeeds: Record<string, Scope | 'member'> = {
  'GET /v1/orgs/{org}': 'member',
  'GET /v1/orgs/{org}/members': 'member',
  'POST /v1/orgs/{org}/members': 'org:admin',
  'PATCH /v1/orgs/{org}/members/{address}': 'org:admin',
  'DELETE /v1/orgs/{org}/members/{address}': 'org:admin',
  'DELETE /v1/orgs/{org}': 'org:owner',
}

type Expected = 'not_found' | 'forbidden' | 'allowed'

function expectedFor(who: OrgRole | 'stranger', route: string, scope: RouteScope): Expected {
  if (who === 'stranger') return 'not_found'
  if (scope === 'operator') return 'forbidden'
  const needs = orgPathNeeds[route] ?? (scope === 'self' ? 'member' : scope)
  return needs === 'member' || roleScopes[who].includes(needs) ? 'allowed' : 'forbidden'
}

/** A request for each route, with the organisation's own ids in the path and a small valid body. */
function requestOf(method: string, path: string, deploymentId: string) {
  const filled = path
    .replace('{org}', ORG)
    .replace('{address}', TARGET)
    .replace('{id}', path.startsWith('/v1/deployments') ? deploymentId : randomUUID())
    .replace('{chainId}', '1')
    .replace('{contract}', `0x${'ab'.repeat(20)}`)
    .replace('{tokenId}', '1')
  const bodies: Record<string, unknown> = {
    'POST /v1/orgs/{org}/members': { address: wallet(0x70), role: 'viewer' },
    'PATCH /v1/orgs/{org}/members/{address}': { role: 'viewer' },
    'POST /v1/deployments': { name: `made-${randomUUID().slice(0, 8)}`, image: 'app:1' },
    'POST /v1/api-keys': { name: 'made' },
  }
  return { path: filled, body: bodies[`${method} ${path}`] }
}

for (const kind of databaseKinds) {
  describe(`every route, for an organisation, by role (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp
    let deploymentId: string
    const callers = new Map<OrgRole | 'stranger', Caller>()
    /** A member signed in with a wallet session (what managing API keys needs). */
    const signedIn = async (address: string) => {
      await app.userKey(address)
      return app.session(address)
    }

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database)
      app = await createTestApp(database, stack)
      const owner = await signedIn(wallet(0x60))
      callers.set('owner', owner)
      const members = orgRoles
        .filter((role) => role !== 'owner')
        .map((role, i) => [wallet(0x61 + i), role] as const)
      await createOrg(owner, { name: 'Isolated', slug: ORG }, [...members, [TARGET, 'viewer']])
      for (const [address, role] of members) callers.set(role, await signedIn(address))
      callers.set('stranger', await signedIn(wallet(0x6e)))
      const made = await owner(
        'POST',
        '/v1/deployments',
        { name: 'theirs', image: 'app:1' },
        { 'berth-org': ORG },
      )
      deploymentId = made.body.id
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    /** What the organisation has: its deployments (and their wanted state), members and keys. */
    async function snapshot() {
      const owner = callers.get('owner')!
      const header = { 'berth-org': ORG }
      const deployments = await owner('GET', '/v1/deployments', undefined, header)
      const members = await owner('GET', `/v1/orgs/${ORG}/members`)
      const keys = await owner('GET', '/v1/api-keys', undefined, header)
      return {
        deployments: deployments.body.items.map(
          (d: { id: string; desiredState: string }) => `${d.id} ${d.desiredState}`,
        ),
        members: members.body.items.map((m: { address: string; role: string }) => `${m.address} ${m.role}`),
        keys: keys.body.items.length,
      }
    }

    // The organisation's deletion last: before it, every route has something to act on.
    const routes = [...routeScopes].sort(([m1, p1], [m2, p2]) =>
      m1 === 'DELETE' && p1 === '/v1/orgs/{org}' ? 1 : m2 === 'DELETE' && p2 === '/v1/orgs/{org}' ? -1 : 0,
    )
    // Roles that may change least go first, so that what they must not change is still there.
    const order: Array<OrgRole | 'stranger'> = ['stranger', 'viewer', 'billing', 'deployer', 'admin', 'owner']

    for (const who of order) {
      it(`${who}: each route answers as the role allows`, async () => {
        const before = await snapshot()
        const wrong: string[] = []
        for (const [method, path, scope] of routes) {
          // Sign-in and what fleet agents send carry no bearer token: nobody acts for an org there.
          if (path === '/health' || path.startsWith('/v1/auth/') || path.startsWith('/v1/fleet/')) continue
          const route = `${method} ${path}`
          const expected = expectedFor(who, route, scope)
          const { path: url, body } = requestOf(method, path, deploymentId)
          const reply = await callers.get(who)!(method, url, body, { 'berth-org': ORG })
          const message = String(reply.body?.error?.message ?? '')
          const got: Expected =
            reply.status === 404 && /^organisation/.test(message)
              ? 'not_found'
              : reply.status === 403
                ? 'forbidden'
                : 'allowed'
          if (got !== expected) wrong.push(`${route}: expected ${expected}, got ${reply.status} ${message}`)
          if (
            got === 'forbidden' &&
            scope !== 'operator' &&
            !/role in iso|is not a member|cannot be used/.test(message)
          ) {
            wrong.push(`${route}: a refusal that does not name the role needed: ${message}`)
          }
        }
        assert.deepEqual(wrong, [])
        if (who === 'stranger' || who === 'viewer') assert.deepEqual(await snapshot(), before)
      })
    }
  })
}
