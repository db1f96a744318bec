import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { createSiweMessage } from 'viem/siwe'
import { routeScopes } from '../src/http/route-scopes.ts'
import { auditOf } from './helpers/audit.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { enrollTestNode, type TestNode } from './helpers/fleet.ts'
import { type Caller, createTestApp, type Reply, type TestApp } from './helpers/http-app.ts'
import { createStack, type Stack } from './helpers/stack.ts'
import { waitFor } from './helpers/wait.ts'

// Every route that changes something leaves an entry in the audit log of the owner it changed,
// naming what it did: each one of them is called here, and a route added later without an entry
// (or without being listed here) fails this test.

const ADMIN_TOKEN = 'audit-routes-admin-token-0123456789'
const wallet = (n: number) => `0x${n.toString(16).padStart(2, '0').repeat(20)}`

/** Changes proven elsewhere, because they need a chain or an NFT collection to happen at all. */
const elsewhere: Record<string, string> = {
  'POST /v1/auth/nonce': 'a sign-in challenge: no owner yet, nothing of anyone changes',
  'POST /v1/quotes': 'order.create, in test/payments-crediting.test.ts (needs the payment networks)',
  'POST /v1/orders/{id}/payments': 'payment.credit, in test/payments-crediting.test.ts (needs a chain)',
  'POST /v1/nfts/{chainId}/{contract}/{tokenId}/deploy':
    'deployment.create, through the same store as POST /v1/deployments',
  'POST /v1/fleet/heartbeats':
    "a node's liveness, thousands a second: kept as its uptime sessions; what it changes (node.recovered) is logged, in test/fleet-heartbeats.test.ts",
  'POST /v1/fleet/logs':
    'lines of a log a reader asked a node for, relayed and deleted when the reader is done: nothing of an owner changes',
  'POST /v1/deployments/{id}/credentials/rotate':
    'deployment.credentials_rotate (and _undone), in test/templates.test.ts (needs a template deployment running)',
  'POST /v1/registry-credentials': 'registry_credential.set, in test/registry-credentials.test.ts',
  'DELETE /v1/registry-credentials/{id}': 'registry_credential.delete, in test/registry-credentials.test.ts',
  'POST /v1/notifications/read':
    "read marks of the owner's own inbox: nothing the owner has changes, nor anything berth does",
  'POST /v1/notification-channels/{id}/verify':
    'channel.verify, in test/notification-channels.test.ts (needs an SMTP server to send the code)',
  'POST /v1/admin/fleet/join-tokens':
    "the operator's own fleet setting, no owner's: the enrollment that uses a token logs its id (node.enroll)",
}

for (const kind of databaseKinds) {
  describe(`an audit entry for every change (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp
    let session: Caller
    let accountId: string
    const seen = new Set<string>()

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database, { flags: { adminToken: ADMIN_TOKEN } })
      app = await createTestApp(database, stack)
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    /** Calls the route, then expects the owner's newest entry to be `action` on `target`. */
    async function expectEntry(
      route: string,
      call: () => Promise<Reply>,
      owner: () => string,
      action: string,
      target?: RegExp,
    ) {
      const reply = await call()
      assert.ok(reply.status < 300, `${route}: ${reply.status} ${JSON.stringify(reply.body)}`)
      const newest = (await auditOf(database, owner())).at(-1)
      assert.equal(newest?.action, action, route)
      if (target) assert.match(newest!.target, target, route)
      assert.equal(newest!.outcome, 'ok')
      seen.add(route)
    }

    it('writes one for each of them', async () => {
      // Signing in: a wallet session, for the routes that need one.
      const signer = privateKeyToAccount(generatePrivateKey())
      const challenge = await (await app.fetch('/v1/auth/nonce', { method: 'POST' })).json()
      const message = createSiweMessage({
        domain: challenge.domain,
        address: signer.address,
        uri: challenge.uri,
        chainId: 1,
        nonce: challenge.nonce,
        version: '1',
        issuedAt: new Date(),
      })
      const signature = await signer.signMessage({ message })
      let token = ''
      await expectEntry(
        'POST /v1/auth/verify',
        async () => {
          const res = await app.fetch('/v1/auth/verify', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ message, signature }),
          })
          const body = await res.json()
          token = body.token
          accountId = (await app.bearer(token)('GET', '/v1/auth/me')).body.accountId
          return { status: res.status, body }
        },
        () => accountId,
        'session.create',
        /^session:/,
      )
      session = app.bearer(token)
      const me = () => accountId
      const org = { 'berth-org': 'trail' }

      let keyId = ''
      await expectEntry(
        'POST /v1/api-keys',
        async () => {
          const made = await session('POST', '/v1/api-keys', { name: 'ci' })
          keyId = made.body.id
          return made
        },
        me,
        'api_key.create',
      )
      await expectEntry(
        'DELETE /v1/api-keys/{id}',
        () => session('DELETE', `/v1/api-keys/${keyId}`),
        me,
        'api_key.revoke',
      )

      let deploymentId = ''
      await expectEntry(
        'POST /v1/deployments',
        async () => {
          const made = await session('POST', '/v1/deployments', { name: 'trail', image: 'app:1' })
          deploymentId = made.body.id
          return made
        },
        me,
        'deployment.create',
      )
      for (const intent of ['stop', 'start', 'restart'] as const) {
        await expectEntry(
          `POST /v1/deployments/{id}/${intent}`,
          () => session('POST', `/v1/deployments/${deploymentId}/${intent}`),
          me,
          `deployment.${intent}`,
          new RegExp(deploymentId),
        )
      }
      await expectEntry(
        'DELETE /v1/deployments/{id}',
        () => session('DELETE', `/v1/deployments/${deploymentId}`),
        me,
        'deployment.delete',
      )

      let orgId = ''
      await expectEntry(
        'POST /v1/orgs',
        async () => {
          const made = await session('POST', '/v1/orgs', { name: 'Trail', slug: 'trail' })
          orgId = made.body.id
          return made
        },
        () => orgId,
        'org.create',
      )
      const member = wallet(0x71)
      const path = `/v1/orgs/trail/members/${member}`
      await expectEntry(
        'POST /v1/orgs/{org}/members',
        () => session('POST', '/v1/orgs/trail/members', { address: member, role: 'viewer' }),
        () => orgId,
        'org.member_add',
      )
      await expectEntry(
        'PATCH /v1/orgs/{org}/members/{address}',
        () => session('PATCH', path, { role: 'deployer' }),
        () => orgId,
        'org.member_role',
      )
      await expectEntry(
        'DELETE /v1/orgs/{org}/members/{address}',
        () => session('DELETE', path),
        () => orgId,
        'org.member_remove',
      )
      // An organisation's own change lands in its log, not in the member's.
      assert.equal((await session('GET', '/v1/audit', undefined, org)).body.items.length, 4)
      await expectEntry(
        'DELETE /v1/orgs/{org}',
        () => session('DELETE', '/v1/orgs/trail'),
        () => orgId,
        'org.delete',
      )

      const operator = app.admin()
      const address = signer.address.toLowerCase()
      await expectEntry(
        'PUT /v1/admin/accounts/{address}/quotas',
        () => operator('PUT', `/v1/admin/accounts/${address}/quotas`, { deployments: 50 }),
        me,
        'quota.set',
      )
      await expectEntry(
        'POST /v1/admin/accounts/{address}/credits',
        () =>
          operator('POST', `/v1/admin/accounts/${address}/credits`, {
            amountMicroUsd: '1000000',
            reason: 'welcome',
          }),
        me,
        'billing.grant',
      )
      const byOperator = (await auditOf(database, accountId)).at(-1)!
      assert.deepEqual([byOperator.actor, byOperator.ip], [{ type: 'operator', id: 'admin' }, null])

      await expectEntry(
        'POST /v1/auth/logout',
        () => session('POST', '/v1/auth/logout'),
        me,
        'session.revoke',
      )
    })

    it("writes one for each change to a fleet node, in its node operator's log", async () => {
      const operator = app.admin()
      const joinToken = (await operator('POST', '/v1/admin/fleet/join-tokens', {})).body.token
      let node: TestNode | undefined
      let nodeOperatorId = ''
      await expectEntry(
        'POST /v1/fleet/enroll',
        async () => {
          node = await enrollTestNode(app, { joinToken })
          const [row] = await database.query<{ operator_id: string }>(
            'select operator_id from fleet_nodes where id = $1',
            [node.nodeId],
          )
          nodeOperatorId = row!.operator_id
          return { status: 200, body: node.answer }
        },
        () => nodeOperatorId,
        'node.enroll',
      )
      const id = node!.nodeId
      for (const [verb, action] of [
        ['cordon', 'node.cordon'],
        ['uncordon', 'node.uncordon'],
        ['drain', 'node.drain'],
      ] as const) {
        await expectEntry(
          `POST /v1/nodes/{id}/${verb}`,
          () => operator('POST', `/v1/nodes/${id}/${verb}`),
          () => nodeOperatorId,
          action,
          new RegExp(`^node:${id}$`),
        )
      }
      await expectEntry(
        'DELETE /v1/nodes/{id}',
        () => operator('DELETE', `/v1/nodes/${id}`),
        () => nodeOperatorId,
        'node.remove',
      )
    })

    it('writes one for each change of a webhook or a notification channel', async () => {
      const session = await app.user(wallet(0x51))
      const ownerId = (await session('GET', '/v1/auth/me')).body.accountId
      const me = () => ownerId
      const made = await session('POST', '/v1/webhooks', { url: 'https://hooks.example/a' })
      assert.equal((await auditOf(database, me())).at(-1)?.action, 'webhook.create')
      seen.add('POST /v1/webhooks')
      const channel = await session('POST', '/v1/notification-channels', {
        kind: 'slack',
        url: 'https://hooks.example/slack/T0/B0/xyz',
      })
      assert.equal((await auditOf(database, me())).at(-1)?.action, 'channel.create')
      seen.add('POST /v1/notification-channels')
      for (const [family, base, id] of [
        ['webhook', '/v1/webhooks', made.body.id],
        ['channel', '/v1/notification-channels', channel.body.id],
      ] as const) {
        await expectEntry(
          `PATCH ${base}/{id}`,
          () => session('PATCH', `${base}/${id}`, { description: 'x' }),
          me,
          `${family}.update`,
        )
        await expectEntry(
          `POST ${base}/{id}/test`,
          () => session('POST', `${base}/${id}/test`),
          me,
          `${family}.test`,
        )
        // The test event's delivery fails (no name resolves here), and is retried by hand.
        const delivery = await waitFor(
          'a delivery',
          async () => (await session('GET', `${base}/${id}/deliveries`)).body.items[0],
        )
        await expectEntry(
          `POST ${base}/{id}/deliveries/{deliveryId}/retry`,
          () => session('POST', `${base}/${id}/deliveries/${delivery.id}/retry`),
          me,
          `${family}.retry`,
        )
        if (family === 'webhook') {
          await expectEntry(
            `POST ${base}/{id}/rotate-secret`,
            () => session('POST', `${base}/${id}/rotate-secret`),
            me,
            'webhook.rotate_secret',
          )
        }
        await expectEntry(
          `DELETE ${base}/{id}`,
          () => session('DELETE', `${base}/${id}`),
          me,
          `${family}.delete`,
          new RegExp(id),
        )
      }
    })

    it('leaves no route that changes something unaccounted for', () => {
      const changing = routeScopes
        .filter(([method]) => method !== 'GET')
        .map(([method, path]) => `${method} ${path}`)
      const missing = changing.filter((route) => !seen.has(route) && !(route in elsewhere))
      assert.deepEqual(missing, [])
    })
  })
}
