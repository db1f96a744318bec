import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type { ReplicaDemand } from '../src/domain/placement.ts'
import { createScheduler, type Scheduler } from '../src/fleet/scheduler.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { beat, enrollTestNode, steppingClock, type TestNode } from './helpers/fleet.ts'
import { createTestApp, type TestApp } from './helpers/http-app.ts'
import { createStack, type Stack } from './helpers/stack.ts'

// Placing replicas on real enrolled nodes (4 CPUs and 8 GB each, as their heartbeats say): spread
// over nodes, refusals that name the constraint, and 200 placements at once never overbooking.

const ADMIN = 'fleet-scheduler-admin-token-0123456789'
const oneCpu: ReplicaDemand = { milliCpus: 1000, memoryMb: 512, diskMb: 1024, gpus: 0, nodeLabels: {} }

for (const kind of databaseKinds) {
  describe(`fleet scheduler (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp
    const clock = steppingClock()
    const beatLater = (node: TestNode, seq: number) => beat(app, node, seq, clock.step())
    let scheduler: Scheduler
    const nodes: TestNode[] = []
    let seq = 0

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database, { flags: { adminToken: ADMIN, fleet: { open: true } } })
      // Heartbeats follow each other faster than a node may send them: each moves the clock 1 s on.
      app = await createTestApp(database, stack, { now: clock.now })
      scheduler = createScheduler(database.db, app.fleet.nodes, 9_500)
      for (let i = 0; i < 5; i++) {
        const node = await enrollTestNode(app, { name: `n${i}` })
        assert.equal((await beatLater(node, ++seq)).status, 204)
        nodes.push(node)
      }
      // Two days of history, so that the nodes are past the hour a new node has to prove itself.
      await database.query(`update node_uptime_sessions set started_at = started_at - interval '2 days'`, [])
      await database.query(
        `update fleet_nodes set first_heartbeat_at = first_heartbeat_at - interval '2 days',
           session_started_at = session_started_at - interval '2 days'`,
        [],
      )
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    const reservedPerNode = async () =>
      database.query<{ node_id: string; cpus: string }>(
        'select node_id, sum(milli_cpus) as cpus from fleet_placements group by node_id',
        [],
      )

    it("spreads a deployment's replicas over nodes and keeps them where they are", async () => {
      const request = { deploymentId: randomUUID(), ownerId: randomUUID(), replicas: 3, demand: oneCpu }
      const placed = await scheduler.place(request)
      assert.ok(placed.every((p) => p.placed))
      const nodeIds = placed.map((p) => (p.placed ? p.nodeId : ''))
      assert.equal(new Set(nodeIds).size, 3, 'three replicas on three nodes')
      assert.match(
        (placed[0] as { reason: string }).reason,
        /^uptime 100% over 7 days, 3 CPUs and 7680 MB free/,
      )
      const again = await scheduler.place(request)
      assert.deepEqual(
        again.map((p) => (p.placed ? [p.nodeId, p.existing] : [])),
        nodeIds.map((id) => [id, true]),
      )
      await scheduler.release(request.deploymentId)
      assert.deepEqual(await reservedPerNode(), [])
    })

    it('names the constraint nothing meets, and leaves cordoned and lost nodes out', async () => {
      const request = (demand: Partial<ReplicaDemand>) => ({
        deploymentId: randomUUID(),
        ownerId: randomUUID(),
        replicas: 1,
        demand: { ...oneCpu, ...demand },
      })
      assert.deepEqual(await scheduler.place(request({ nodeLabels: { region: 'mars' } })), [
        {
          replica: 0,
          placed: false,
          failed: 'labels',
          reason: 'no schedulable node has the labels region=mars',
        },
      ])
      assert.deepEqual(await scheduler.place(request({ milliCpus: 5000 })), [
        {
          replica: 0,
          placed: false,
          failed: 'capacity',
          reason: 'no matching node has 5 CPUs, 512 MB memory, 1024 MB disk free',
        },
      ])
      const operator = app.admin()
      for (const node of nodes.slice(1)) {
        assert.equal((await operator('POST', `/v1/nodes/${node.nodeId}/cordon`)).status, 200)
      }
      const onlyFirst = await scheduler.place(request({}))
      assert.equal(onlyFirst[0]!.placed && onlyFirst[0]!.nodeId, nodes[0]!.nodeId)
      await database.query(`update fleet_nodes set connectivity = 'lost' where id = $1`, [nodes[0]!.nodeId])
      assert.deepEqual((await scheduler.place(request({})))[0], {
        replica: 0,
        placed: false,
        failed: 'schedulable',
        reason: 'every online node is cordoned or draining',
      })
      // Back as they were, for the next test.
      assert.equal((await beatLater(nodes[0]!, ++seq)).status, 204)
      for (const node of nodes.slice(1)) await operator('POST', `/v1/nodes/${node.nodeId}/uncordon`)
      await database.query('delete from fleet_placements', [])
    })

    it('never overbooks a node when 200 placements run at once', async () => {
      const results = await Promise.all(
        Array.from({ length: 200 }, () =>
          scheduler.place({ deploymentId: randomUUID(), ownerId: randomUUID(), replicas: 1, demand: oneCpu }),
        ),
      )
      const placed = results.filter(([r]) => r!.placed)
      assert.equal(placed.length, 20, 'five nodes of four CPUs hold twenty one-CPU replicas')
      assert.ok(
        results.every(([r]) => r!.placed || r!.failed === 'capacity'),
        'the rest are refused for capacity',
      )
      const reserved = await reservedPerNode()
      assert.equal(reserved.length, 5)
      for (const row of reserved) assert.equal(Number(row.cpus), 4000, `node ${row.node_id} is exactly full`)
    })
  })
}
