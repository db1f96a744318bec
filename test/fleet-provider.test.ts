import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pino from 'pino'
import { sweepOrphans } from '../src/control/orphan-sweep.ts'
import { type Assignment, assignmentStreamMessage } from '../src/domain/node.ts'
import { signWithAgentKey } from '../src/fleet/agent-key.ts'
import { NODE_HEADER, TIMESTAMP_HEADER } from '../src/fleet/assignment-stream.ts'
import { SIGNATURE_HEADER } from '../src/fleet/heartbeats.ts'
import type { Heartbeat } from '../src/fleet/node-schemas.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { beat, enrollTestNode, steppingClock, type TestNode } from './helpers/fleet.ts'
import { type Caller, createTestApp, type TestApp } from './helpers/http-app.ts'
import { singleImage } from './helpers/single-image.ts'
import { createStack, type Stack } from './helpers/stack.ts'
import { waitFor } from './helpers/wait.ts'

// The `fleet` provider as the control plane runs it, with nodes driven here through the agent's
// protocol (heartbeats reporting instances, the signed assignment stream): a start that fits no
// node waits `pending` naming why and is placed once a node joins; a placement is a `scheduled`
// event and an assignment on the node's stream; the deployment runs once the node reports it
// running; a failure the node reports fails it with the node's reason; a stop takes the
// assignment away. (With real agents and containers: e2e-fleet-deploy.test.ts.)

interface View {
  id: string
  status: string
  waiting?: { reason: string }
  error?: string
}
interface Event {
  type: string
  status?: string
  message?: string
}

for (const kind of databaseKinds) {
  describe(`fleet provider (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp
    let alice: Caller
    const clock = steppingClock()
    let seq = 0
    const enrolled: TestNode[] = []
    /** A heartbeat a second after the last (in the server's clock), reporting these instances. */
    const report = (node: TestNode, instances: Heartbeat['instances'] = [], usage: Heartbeat['usage'] = []) =>
      beat(app, node, ++seq, clock.step(), instances, usage)

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database, {
        flags: {
          adminToken: 'fleet-provider-admin-token-0123456789',
          fleet: { open: true, minUptimePercent: 0 },
          providers: {
            simulated: { pullMs: 0, createMs: 0, startMs: 0 },
            docker: { enabled: false, deniedRegistries: ['ghcr.io'] },
          },
        },
      })
      app = await createTestApp(database, stack, { now: clock.now })
      alice = await app.user(`0x${'f1'.repeat(20)}`)
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    const view = async (id: string) => (await alice('GET', `/v1/deployments/${id}`)).body as View
    const events = async (id: string) =>
      (await alice('GET', `/v1/deployments/${id}/events?limit=200`)).body.items as Event[]
    const create = async (name: string, extra: Record<string, unknown> = {}) => {
      const reply = await alice('POST', '/v1/deployments', {
        name,
        image: 'app:1',
        provider: 'fleet',
        resources: { cpus: 1, memoryMb: 256, diskMb: 100 },
        ...extra,
      })
      assert.equal(reply.status, 202, JSON.stringify(reply.body))
      return reply.body.id as string
    }

    /** Opens the node's assignment stream and reads its first list. */
    const firstAssignments = async (node: TestNode, headers?: Record<string, string>) => {
      const timestamp = clock.now().toISOString()
      const res = await app.fetch('/v1/fleet/assignments', {
        headers: headers ?? {
          [NODE_HEADER]: node.nodeId,
          [TIMESTAMP_HEADER]: timestamp,
          [SIGNATURE_HEADER]: signWithAgentKey(node.key, assignmentStreamMessage(node.nodeId, timestamp)),
        },
      })
      if (res.status !== 200) return { status: res.status, body: await res.json() }
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
      let text = ''
      while (!text.includes('\n\n')) text += (await reader.read()).value ?? ''
      await reader.cancel()
      const data = text
        .split('\n')
        .find((line) => line.startsWith('data: '))!
        .slice('data: '.length)
      assert.match(text, /^event: assignments$/m)
      return { status: 200, assignments: (JSON.parse(data) as { assignments: Assignment[] }).assignments }
    }

    it('waits no_node_fits naming why, is placed when a node joins, and runs once the node reports it', async () => {
      const id = await create('web')
      await waitFor('waiting for a node', async () => (await view(id)).waiting?.reason === 'no_node_fits')
      assert.equal((await view(id)).status, 'pending')
      const waited = (await events(id)).find((e) => e.type === 'no_node_fits')
      assert.match(waited?.message ?? '', /no node fits replica 0 \(online\): the fleet has no nodes/)

      const node = await enrollTestNode(app, { name: 'solo' })
      enrolled.push(node)
      await report(node)
      await waitFor('placed', async () => (await view(id)).status === 'deploying')
      const scheduled = (await events(id)).find((e) => e.type === 'scheduled')
      assert.equal(scheduled?.status, 'scheduled')
      assert.match(scheduled?.message ?? '', new RegExp(`replica 0 on node ${node.nodeId}: uptime`))

      const stream = await firstAssignments(node)
      assert.equal(stream.status, 200)
      const [assignment] = stream.assignments!.filter((a) => a.deploymentId === id)
      assert.equal(assignment?.replica, 0)
      assert.equal(assignment && singleImage(assignment.spec).image, 'app:1')

      // The node's report is what makes it run: nothing runs on the control plane's word. A port it
      // says is on a private address is no endpoint (the control plane would probe its own network).
      const inside = { containerPort: 80, protocol: 'tcp' as const, host: '10.0.0.7', port: 8080 }
      await report(node, [
        {
          deploymentId: id,
          replica: 0,
          generation: assignment!.generation,
          state: 'running',
          ports: [inside],
        },
      ])
      await waitFor('running', async () => (await view(id)).status === 'running')
      assert.deepEqual((await alice('GET', `/v1/deployments/${id}`)).body.endpoints, [])

      // What it uses is what its node reports (nothing until it does).
      await assert.rejects(app.fleet.provider.stats(id), /no node has reported/)
      const running = {
        deploymentId: id,
        replica: 0,
        generation: assignment!.generation,
        state: 'running' as const,
      }
      const usage = {
        deploymentId: id,
        cpuPercent: 12.5,
        memoryBytes: 1 << 20,
        networkRxBytes: 10,
        networkTxBytes: 20,
      }
      await report(node, [running], [usage])
      const { deploymentId: _, ...used } = usage
      assert.deepEqual(await app.fleet.provider.stats(id), used)

      // Restarted: the node is told a newer generation, and it runs again once the node reports it.
      assert.equal((await alice('POST', `/v1/deployments/${id}/restart`)).status, 202)
      const restarted = await waitFor('a newer generation assigned', async () => {
        const [next] = (await firstAssignments(node)).assignments!.filter((a) => a.deploymentId === id)
        return next && next.generation > assignment!.generation && next
      })
      await report(node, [{ ...running, generation: restarted.generation }])
      // (The restart returns once the node reports the new run; only then is it recorded.)
      await waitFor(
        'running again after the restart',
        async () =>
          (await events(id)).some((e) => e.message === 'restarted on request') &&
          (await view(id)).status === 'running',
      )

      // Stopped: the node keeps the replica, stopped (with its volumes), for a start there.
      assert.equal((await alice('POST', `/v1/deployments/${id}/stop`)).status, 202)
      await waitFor('stopped', async () => (await view(id)).status === 'stopped')
      const kept = (await firstAssignments(node)).assignments!.filter((a) => a.deploymentId === id)
      assert.deepEqual(
        kept.map((a) => [a.replica, a.stopped]),
        [[0, true]],
      )
      // Started again: on the same node, running once the node says so.
      assert.equal((await alice('POST', `/v1/deployments/${id}/start`)).status, 202)
      await waitFor('assigned to run again', async () => {
        const [again] = (await firstAssignments(node)).assignments!.filter((a) => a.deploymentId === id)
        return again?.stopped === false
      })
      await report(node, [{ ...running, generation: restarted.generation }])
      await waitFor('running after the start', async () => (await view(id)).status === 'running')

      // Deleted: the assignment is gone from the node's list, and the node's room is free.
      assert.equal((await alice('DELETE', `/v1/deployments/${id}`)).status, 202)
      await waitFor('deleted', async () => (await view(id)).status === 'deleted')
      assert.deepEqual(
        (await firstAssignments(node)).assignments!.filter((a) => a.deploymentId === id),
        [],
      )
      const placements = await database.query('select 1 from fleet_placements where deployment_id = $1', [id])
      assert.equal(placements.length, 0)
    })

    it('waits for a node with the labels the spec asks for, naming the constraint', async () => {
      const id = await create('gpu-box', { placement: { nodeLabels: { region: 'mars' } } })
      await waitFor('waiting', async () => (await view(id)).waiting?.reason === 'no_node_fits')
      const waited = (await events(id)).find((e) => e.type === 'no_node_fits')
      assert.match(waited?.message ?? '', /\(labels\): no schedulable node has the labels region=mars/)
      assert.equal((await alice('DELETE', `/v1/deployments/${id}`)).status, 202)

      // The operator's registry policy holds on the fleet as on a docker host.
      const refused = await alice('POST', '/v1/deployments', {
        name: 'denied',
        image: 'ghcr.io/acme/app:1',
        provider: 'fleet',
      })
      assert.equal(refused.status, 403)
      assert.match(refused.body.error.message, /images from ghcr\.io are not allowed/)
    })

    it('places all replicas or none: one that fits nowhere leaves nothing held', async () => {
      const roomy = await enrollTestNode(app, { name: 'roomy' })
      enrolled.push(roomy)
      await report(roomy)
      // Each node offers 4 CPUs: one 3-CPU replica fits on a node, never two, and the other nodes
      // are busy or cordoned for this test.
      for (const other of enrolled.filter((n) => n !== roomy)) {
        await app.admin()('POST', `/v1/nodes/${other.nodeId}/cordon`)
      }
      const id = await create('two-big', { replicas: 2, resources: { cpus: 3, memoryMb: 256, diskMb: 100 } })
      await waitFor('waiting', async () => (await view(id)).waiting?.reason === 'no_node_fits')
      const waited = (await events(id)).find((e) => e.type === 'no_node_fits')
      assert.match(waited?.message ?? '', /replica 1 \(capacity\)/)
      const held = await database.query('select 1 from fleet_placements where deployment_id = $1', [id])
      assert.equal(held.length, 0, 'replica 0 is not left placed while replica 1 waits')
      assert.equal((await alice('DELETE', `/v1/deployments/${id}`)).status, 202)
      for (const other of enrolled.filter((n) => n !== roomy)) {
        await app.admin()('POST', `/v1/nodes/${other.nodeId}/uncordon`)
      }
    })

    it('refuses a failure report naming an event type nodes may not write', async () => {
      const node = enrolled[0]!
      const made = await report(node, [
        {
          deploymentId: '00000000-0000-4000-8000-000000000001',
          replica: 0,
          generation: 0,
          state: 'failed',
          error: { kind: 'permanent', message: 'x', eventType: 'funds_exhausted' as never },
        },
      ])
      assert.equal(made.status, 400)
      assert.match(made.message ?? '', /eventType/)
    })

    it("fails a deployment with the node's reason when the node cannot run it", async () => {
      enrolled.push(await enrollTestNode(app, { name: 'failing' }))
      await report(enrolled.at(-1)!)
      const id = await create('bad-image')
      await waitFor('placed', async () => (await view(id)).status === 'deploying')
      // Whichever node it was placed on reports the failure.
      const [placement] = await database.query<{ node_id: string }>(
        'select node_id from fleet_placements where deployment_id = $1',
        [id],
      )
      const on = enrolled.find((n) => n.nodeId === placement?.node_id)!
      const [assignment] = (await firstAssignments(on)).assignments!.filter((a) => a.deploymentId === id)
      await report(on, [
        {
          deploymentId: id,
          replica: 0,
          generation: assignment!.generation,
          state: 'failed',
          error: { kind: 'permanent', message: 'pull access denied for app', eventType: 'image_pull_failed' },
        },
      ])
      await waitFor('failed', async () => (await view(id)).status === 'failed')
      assert.match(
        (await view(id)).error ?? '',
        new RegExp(`node ${on.answer.name}, replica 0: pull access denied`),
      )
      assert.ok((await events(id)).some((e) => e.type === 'image_pull_failed'))
    })

    it("a drain takes a stopped deployment's replica off its node, ending cordoned; a start that cannot place it keeps the other", async () => {
      for (const other of enrolled) await app.admin()('POST', `/v1/nodes/${other.nodeId}/cordon`)
      const kept = await enrollTestNode(app, { name: 'kept' })
      const drained = await enrollTestNode(app, { name: 'drained' })
      await report(kept)
      await report(drained)
      // 3 of each node's 4 CPUs: one replica per node.
      const id = await create('resting', { replicas: 2, resources: { cpus: 3, memoryMb: 256, diskMb: 100 } })
      await waitFor('placed', async () => (await view(id)).status === 'deploying')
      for (const node of [kept, drained]) {
        const [mine] = (await firstAssignments(node)).assignments!.filter((a) => a.deploymentId === id)
        await report(node, [
          { deploymentId: id, replica: mine!.replica, generation: mine!.generation, state: 'running' },
        ])
      }
      await waitFor('running', async () => (await view(id)).status === 'running')
      assert.equal((await alice('POST', `/v1/deployments/${id}/stop`)).status, 202)
      await waitFor('stopped', async () => (await view(id)).status === 'stopped')

      assert.equal((await app.admin()('POST', `/v1/nodes/${drained.nodeId}/drain`)).body.status, 'draining')
      await app.fleet.sweepOnce()
      assert.deepEqual((await firstAssignments(drained)).assignments, [])
      await app.fleet.sweepOnce()
      assert.equal((await app.admin()('GET', `/v1/nodes/${drained.nodeId}`)).body.status, 'cordoned')

      // Started again: the drained node's replica fits nowhere now, and the kept one stays kept.
      assert.equal((await alice('POST', `/v1/deployments/${id}/start`)).status, 202)
      await waitFor('waiting for a node', async () => (await view(id)).waiting?.reason === 'no_node_fits')
      const still = (await firstAssignments(kept)).assignments!.filter((a) => a.deploymentId === id)
      assert.deepEqual(
        still.map((a) => [a.stopped]),
        [[true]],
      )
    })

    it('removes placements whose deployment is gone, in the orphan sweep', async () => {
      const node = enrolled[0]!
      const ghost = '00000000-0000-4000-8000-00000000abcd'
      await database.query(
        `insert into fleet_placements (deployment_id, replica, node_id, owner_id, milli_cpus, memory_mb, disk_mb, placed_at, reason)
         values ($1, 0, $2, $1, 1000, 256, 100, now(), 'left behind')`,
        [ghost, node.nodeId],
      )
      assert.ok((await sweepOrphans(stack.providers, stack.store, pino({ level: 'silent' }))) >= 1)
      const left = await database.query('select 1 from fleet_placements where deployment_id = $1', [ghost])
      assert.equal(left.length, 0)
    })

    it('opens a stream only for a node proving itself with its key, within the clock skew', async () => {
      const node = await enrollTestNode(app, { name: 'streamer' })
      const other = await enrollTestNode(app, { name: 'other' })
      const now = clock.now().toISOString()
      const signed = (who: TestNode, timestamp: string, signer = who) => ({
        [NODE_HEADER]: who.nodeId,
        [TIMESTAMP_HEADER]: timestamp,
        [SIGNATURE_HEADER]: signWithAgentKey(signer.key, assignmentStreamMessage(who.nodeId, timestamp)),
      })
      const refused = async (headers: Record<string, string>) =>
        (await firstAssignments(node, headers)).status
      assert.equal(await refused({}), 400)
      assert.equal(await refused({ ...signed(node, now), [SIGNATURE_HEADER]: '' }), 401)
      assert.equal(await refused(signed(node, now, other)), 401)
      const old = new Date(clock.now().getTime() - 10 * 60_000).toISOString()
      assert.equal(await refused(signed(node, old)), 400)
      const stranger = { ...node, nodeId: '00000000-0000-4000-8000-000000000000' }
      assert.equal(await refused(signed(stranger, now, node)), 404)
      assert.equal((await firstAssignments(node, signed(node, now))).status, 200)
      // The same signed headers again: a replay, refused.
      assert.equal(await refused(signed(node, now)), 409)
    })
  })
}
