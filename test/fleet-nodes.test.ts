import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { createSiweMessage } from 'viem/siwe'
import { AGENT_KEY_RESOURCE, ENROLL_STATEMENT } from '../src/domain/node.ts'
import { generateAgentKey } from '../src/fleet/agent-key.ts'
import { auditLines } from './helpers/audit.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { beat, enrollTestNode, steppingClock, type TestNode } from './helpers/fleet.ts'
import { createTestApp, type TestApp } from './helpers/http-app.ts'
import { createStack, type Stack } from './helpers/stack.ts'

// Enrolling nodes in a closed fleet (join tokens, the same key finding its node again, a key
// another wallet holds), the purpose of an enrollment signature, and the operator's node routes.

const ADMIN_TOKEN = 'fleet-nodes-admin-token-0123456789'

for (const kind of databaseKinds) {
  describe(`fleet enrollment and nodes (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp
    const clock = steppingClock()
    const beatLater = (node: TestNode, seq: number) => beat(app, node, seq, clock.step())

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database, { flags: { adminToken: ADMIN_TOKEN } })
      // Heartbeats follow each other faster than a node may send them: each moves the clock 1 s on.
      app = await createTestApp(database, stack, { now: clock.now })
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    const joinToken = async (body: Record<string, unknown> = {}) => {
      const reply = await app.admin()('POST', '/v1/admin/fleet/join-tokens', body)
      assert.equal(reply.status, 201, JSON.stringify(reply.body))
      return reply.body.token as string
    }

    it('admits a node to a closed fleet only with a join token, for as many uses as it has', async () => {
      await assert.rejects(enrollTestNode(app), /this fleet is closed: enrolling needs a join token/)
      await assert.rejects(enrollTestNode(app, { joinToken: 'bjt_made-up' }), /join token is unknown/)
      const token = await joinToken({ maxUses: 2, note: 'rack 7' })
      const first = await enrollTestNode(app, { joinToken: token, name: 'rack7-a', labels: { region: 'eu' } })
      assert.equal(first.answer.name, 'rack7-a')
      assert.equal(first.answer.reenrolled, false)
      assert.equal(first.answer.heartbeatSeconds, 10)
      await enrollTestNode(app, { joinToken: token })
      await assert.rejects(enrollTestNode(app, { joinToken: token }), /used up/)
      const user = await app.user('0x00000000000000000000000000000000000000f1')
      assert.equal((await user('POST', '/v1/admin/fleet/join-tokens', {})).status, 403)
      const bad = await app.admin()('POST', '/v1/admin/fleet/join-tokens', { maxUses: 0 })
      assert.equal(bad.status, 400)
    })

    it('finds the same node again for the same agent key, and refuses that key to another wallet', async () => {
      const key = generateAgentKey()
      const walletKey = generatePrivateKey()
      const first = await enrollTestNode(app, { key, walletKey, joinToken: await joinToken() })
      // Still in the fleet: enrolling again needs no token and keeps the node's id.
      const again = await enrollTestNode(app, { key, walletKey, name: 'renamed' })
      assert.equal(again.nodeId, first.nodeId)
      assert.equal(again.answer.reenrolled, true)
      assert.equal(again.answer.name, 'renamed')
      await assert.rejects(
        enrollTestNode(app, { key, joinToken: await joinToken() }),
        /enrolled by another wallet/,
      )
    })

    it('never takes an enrollment signature as a sign-in', async () => {
      const wallet = privateKeyToAccount(generatePrivateKey())
      const { body: nonce } = await app
        .fetch('/v1/auth/nonce', { method: 'POST' })
        .then(async (r) => ({ body: await r.json() }))
      const message = createSiweMessage({
        domain: nonce.domain,
        uri: nonce.uri,
        address: wallet.address,
        statement: ENROLL_STATEMENT,
        version: '1',
        chainId: 1,
        nonce: nonce.nonce,
        issuedAt: new Date(),
        resources: [`${AGENT_KEY_RESOURCE}${generateAgentKey().publicKey}`],
      })
      const signature = await wallet.signMessage({ message })
      const res = await app.fetch('/v1/auth/verify', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ message, signature }),
      })
      assert.equal(res.status, 401)
      assert.match(await res.text(), /enrolls a fleet node; it does not sign in/)
      // Nor the enrollment statement without the key: what the wallet showed was an enrollment.
      const second = await (await app.fetch('/v1/auth/nonce', { method: 'POST' })).json()
      const statementOnly = createSiweMessage({
        domain: second.domain,
        uri: second.uri,
        address: wallet.address,
        statement: ENROLL_STATEMENT,
        version: '1',
        chainId: 1,
        nonce: second.nonce,
        issuedAt: new Date(),
      })
      const refused = await app.fetch('/v1/auth/verify', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          message: statementOnly,
          signature: await wallet.signMessage({ message: statementOnly }),
        }),
      })
      assert.equal(refused.status, 401)
    })

    it('lets the operator list, cordon, drain and remove nodes, and a node operator see only theirs', async () => {
      const walletKey = generatePrivateKey()
      const address = privateKeyToAccount(walletKey).address.toLowerCase()
      const node = await enrollTestNode(app, { walletKey, joinToken: await joinToken(), name: 'mine' })
      assert.equal((await beatLater(node, 1)).status, 204)
      const operator = app.admin()

      const all = await operator('GET', '/v1/nodes')
      assert.equal(all.status, 200)
      const listed = all.body.items.find((n: { id: string }) => n.id === node.nodeId)
      assert.equal(listed.operator, address)
      assert.equal(listed.status, 'online')
      assert.deepEqual(listed.labels, { region: 'test' })
      assert.equal(listed.allocatable.milliCpus, 4000)

      const owner = await app.session(address)
      const stranger = await app.user('0x00000000000000000000000000000000000000f2')
      assert.deepEqual(
        (await owner('GET', '/v1/my/nodes')).body.items.map((n: { name: string }) => n.name),
        ['mine'],
      )
      assert.deepEqual((await stranger('GET', '/v1/my/nodes')).body.items, [])
      assert.equal((await owner('GET', `/v1/nodes/${node.nodeId}`)).status, 200)
      assert.equal((await stranger('GET', `/v1/nodes/${node.nodeId}`)).status, 404)
      assert.equal((await owner('GET', '/v1/nodes')).status, 403)
      assert.equal((await owner('POST', `/v1/nodes/${node.nodeId}/cordon`)).status, 403)

      assert.equal((await operator('POST', `/v1/nodes/${node.nodeId}/cordon`)).body.status, 'cordoned')
      assert.equal((await operator('POST', `/v1/nodes/${node.nodeId}/drain`)).body.status, 'draining')
      assert.equal((await operator('POST', `/v1/nodes/${node.nodeId}/uncordon`)).body.status, 'online')
      assert.equal(
        (await operator('POST', '/v1/nodes/00000000-0000-4000-8000-000000000000/cordon')).status,
        404,
      )
      // A node holding a replica cannot be removed; what it reports running does not matter.
      const deploymentId = '00000000-0000-4000-8000-0000000000aa'
      await database.query(
        `insert into fleet_placements (deployment_id, replica, node_id, owner_id, milli_cpus, memory_mb, disk_mb, placed_at, reason)
         values ($1, 0, $2, $1, 1000, 512, 0, now(), 'test')`,
        [deploymentId, node.nodeId],
      )
      const held = await operator('DELETE', `/v1/nodes/${node.nodeId}`)
      assert.equal(held.status, 409)
      assert.match(held.body.error.message, /still holds 1 replica\(s\): drain it first/)
      await database.query('delete from fleet_placements where deployment_id = $1', [deploymentId])
      assert.equal((await operator('DELETE', `/v1/nodes/${node.nodeId}`)).status, 204)
      assert.equal((await operator('GET', `/v1/nodes/${node.nodeId}`)).status, 404)
      assert.equal((await beatLater(node, 2)).status, 404, 'a removed node is not heard')
      const ownerId = (
        await database.query<{ id: string }>('select id from accounts where address = $1', [address])
      )[0]!.id
      assert.deepEqual(
        (await auditLines(database, ownerId)).filter((l) => l.includes(' node.')),
        [
          `account:${address} node.enroll`,
          'operator:admin node.cordon',
          'operator:admin node.drain',
          'operator:admin node.uncordon',
          'operator:admin node.remove',
        ],
      )
      // Enrolling again (with a token: it was removed) brings the same node back.
      const back = await enrollTestNode(app, { walletKey, key: node.key, joinToken: await joinToken() })
      assert.equal(back.nodeId, node.nodeId)
      assert.equal((await beatLater(node, 3)).status, 204)
    })
  })
}
