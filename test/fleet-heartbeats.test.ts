import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { pino } from 'pino'
import { generateAgentKey, signWithAgentKey } from '../src/fleet/agent-key.ts'
import { sweepLostNodes } from '../src/fleet/loss-sweep.ts'
import { auditLines } from './helpers/audit.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { beat, enrollTestNode, heartbeatOf, postHeartbeat, type TestNode } from './helpers/fleet.ts'
import { createTestApp, type TestApp } from './helpers/http-app.ts'
import { outboxTypes } from './helpers/outbox.ts'
import { createStack, type Stack } from './helpers/stack.ts'

// Heartbeats from enrolled nodes, on a clock the test moves: refusals (each counted, none written),
// the uptime session rule, uptime percentages against hand-computed figures, and loss.

const T0 = new Date('2026-03-01T00:00:00Z')
const MINUTE = 60_000
const HOUR = 60 * MINUTE

for (const kind of databaseKinds) {
  describe(`fleet heartbeats (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp
    let clock = T0
    const at = (ms: number) => new Date(T0.getTime() + ms)

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database, {
        flags: { fleet: { open: true }, adminToken: 'fleet-heartbeats-admin-0123456789' },
      })
      app = await createTestApp(database, stack, { now: () => clock })
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    /** The loss sweep at `now`, for a control plane started at `startedAt`; the ids it found lost. */
    const sweepAt = (now: Date, startedAt = T0) =>
      sweepLostNodes({
        db: database.db,
        rule: { heartbeatSeconds: 10, lossGraceSeconds: 5 },
        startedAt,
        now: () => now,
        logger: pino({ level: 'silent' }),
      })
    const nodeRow = async (id: string) =>
      (
        await database.query<{ last_seq: string; connectivity: string }>(
          'select last_seq, connectivity from fleet_nodes where id = $1',
          [id],
        )
      )[0]!
    const sessionsOf = async (id: string) =>
      (
        await database.query<{ started_at: Date; last_seen_at: Date }>(
          'select started_at, last_seen_at from node_uptime_sessions where node_id = $1 order by started_at',
          [id],
        )
      ).map((s) => [new Date(s.started_at).toISOString(), new Date(s.last_seen_at).toISOString()])
    const counted = async (outcome: string) => {
      const line = (await app.metricsText())
        .split('\n')
        .find((l) => l.startsWith(`berth_fleet_heartbeats_total{outcome="${outcome}"}`))
      return Number(line?.split(' ')[1] ?? 0)
    }

    it('refuses replayed, reordered, too frequent, badly signed, mistimed and unknown heartbeats, writing nothing', async () => {
      clock = T0
      const node = await enrollTestNode(app)
      assert.equal((await beat(app, node, 10, clock)).status, 204)
      const before = { row: await nodeRow(node.nodeId), sessions: await sessionsOf(node.nodeId) }
      const refusedBefore = {
        replayed: await counted('replayed'),
        bad_signature: await counted('bad_signature'),
        skewed: await counted('skewed'),
        unknown_node: await counted('unknown_node'),
        invalid: await counted('invalid'),
      }

      const body = JSON.stringify(heartbeatOf(node, 10, clock))
      const replay = await postHeartbeat(app, body, signWithAgentKey(node.key, body))
      assert.equal(replay.status, 409)
      assert.match(replay.message!, /sequence 10 is not above the last accepted 10/)
      assert.equal((await beat(app, node, 9, clock)).status, 409, 'a lower sequence is out of order')

      const stranger = generateAgentKey()
      const forged = await postHeartbeat(
        app,
        body.replace('"seq":10', '"seq":11'),
        signWithAgentKey(stranger, body),
      )
      assert.equal(forged.status, 401)
      assert.match(forged.message!, /does not verify/)
      const tampered = JSON.stringify(heartbeatOf(node, 12, clock))
      const signedOther = signWithAgentKey(node.key, JSON.stringify(heartbeatOf(node, 13, clock)))
      assert.equal((await postHeartbeat(app, tampered, signedOther)).status, 401, 'signature of another body')
      assert.equal((await postHeartbeat(app, tampered, undefined)).status, 401, 'no signature at all')
      assert.equal((await postHeartbeat(app, tampered, 'not base64!')).status, 401)

      const skewed = await beat(app, node, 14, new Date(clock.getTime() + 2 * MINUTE))
      assert.equal(skewed.status, 400)
      assert.match(skewed.message!, /120 s from the server's clock \(allowed: 30 s\)/)
      assert.equal((await beat(app, node, 15, new Date(clock.getTime() - 2 * MINUTE))).status, 400)

      const unknown = await beat(app, { ...node, nodeId: '00000000-0000-4000-8000-000000000000' }, 16, clock)
      assert.equal(unknown.status, 404)
      assert.match(unknown.message!, /not enrolled here/)
      const invalid = await postHeartbeat(app, '{"nodeId":"x"}', signWithAgentKey(node.key, '{"nodeId":"x"}'))
      assert.equal(invalid.status, 400)
      assert.match(invalid.message!, /invalid heartbeat: nodeId/)
      assert.equal((await postHeartbeat(app, 'not json', 'AAAA')).status, 400)
      // Text the database cannot hold (a lone surrogate) is refused here, not by a failed batch.
      const surrogate = JSON.stringify({ ...heartbeatOf(node, 11, clock), version: 'x\ud800' })
      const unstorable = await postHeartbeat(app, surrogate, signWithAgentKey(node.key, surrogate))
      assert.equal(unstorable.status, 400)
      assert.match(unstorable.message!, /version: a version is up to 64 plain characters/)

      assert.deepEqual(await nodeRow(node.nodeId), before.row, 'no refused heartbeat changed the node')
      assert.deepEqual(await sessionsOf(node.nodeId), before.sessions)
      assert.equal(await counted('replayed'), refusedBefore.replayed + 2)
      assert.equal(await counted('bad_signature'), refusedBefore.bad_signature + 4)
      assert.equal(await counted('skewed'), refusedBefore.skewed + 2)
      assert.equal(await counted('unknown_node'), refusedBefore.unknown_node + 1)
      assert.equal(await counted('invalid'), refusedBefore.invalid + 3)

      // A heartbeat half a second or less after the last accepted one is refused for its rate.
      const tooSoon = await beat(app, node, 19, new Date(clock.getTime() + 499))
      clock = new Date(clock.getTime() + 499)
      const tooSoonAgain = await beat(app, node, 19, clock)
      assert.equal(tooSoon.status, 429)
      assert.equal(tooSoonAgain.status, 429)
      assert.match(tooSoonAgain.message!, /more often than twice a second/)
      assert.deepEqual(await nodeRow(node.nodeId), before.row)
      assert.equal(await counted('too_frequent'), 2)

      // Of many copies of one new heartbeat sent at once, exactly one is accepted; the others are
      // refused before they queue for the writer (one heartbeat of a node waits at a time).
      clock = new Date(T0.getTime() + 1000)
      const next = JSON.stringify(heartbeatOf(node, 20, clock))
      const signature = signWithAgentKey(node.key, next)
      const statuses = await Promise.all(
        Array.from({ length: 12 }, () => postHeartbeat(app, next, signature)),
      )
      assert.deepEqual(statuses.map((s) => s.status).sort(), [204, ...Array(11).fill(429)])
      assert.match(statuses.find((s) => s.status === 429)!.message!, /already has a heartbeat being written/)
      // The same copy once the first is written: a replay.
      assert.equal((await postHeartbeat(app, next, signature)).status, 409)
    })

    it('extends a session within the 30-minute gap and opens a new one after a longer silence', async () => {
      clock = T0
      const node = await enrollTestNode(app)
      let seq = 0
      const send = async (ms: number) => {
        clock = at(ms)
        assert.equal((await beat(app, node, ++seq, clock)).status, 204)
      }
      await send(0)
      await send(10_000)
      await send(10_000 + 30 * MINUTE) // exactly the gap: still the same session
      await send(10_000 + 60 * MINUTE + 1000) // one second more than the gap: a new one
      await send(10_000 + 61 * MINUTE)
      assert.deepEqual(await sessionsOf(node.nodeId), [
        [at(0).toISOString(), at(10_000 + 30 * MINUTE).toISOString()],
        [at(10_000 + 60 * MINUTE + 1000).toISOString(), at(10_000 + 61 * MINUTE).toISOString()],
      ])
    })

    it('computes uptime over 24 h, 7 d and 30 d from the sessions, and finds a silent node lost', async () => {
      clock = T0
      const node: TestNode = await enrollTestNode(app, { name: 'uptime-node' })
      let seq = 0
      // Up from 0 h to 12 h (a heartbeat every 30 minutes extends the session), silent until 18 h,
      // up again from 18 h to 24 h.
      for (let ms = 0; ms <= 12 * HOUR; ms += 30 * MINUTE) {
        clock = at(ms)
        assert.equal((await beat(app, node, ++seq, clock)).status, 204)
      }
      assert.equal((await app.admin()('GET', `/v1/nodes/${node.nodeId}`)).body.lostAt, null, 'never lost yet')
      // Other tests' nodes share the database: this one's fate is what is checked.
      const sweep = async (now: Date) => (await sweepAt(now)).includes(node.nodeId)
      // 3 intervals + grace = 35 s of silence: not lost at 34 s, lost at 36 s.
      assert.equal(await sweep(at(12 * HOUR + 34_000)), false)
      assert.equal(await sweep(at(12 * HOUR + 36_000)), true)
      assert.equal(await sweep(at(12 * HOUR + 40_000)), false, 'a lost node is reported once')
      clock = at(13 * HOUR)
      const seen = await app.admin()('GET', `/v1/nodes/${node.nodeId}`)
      assert.equal(seen.body.status, 'lost')
      assert.equal(seen.body.lostAt, at(12 * HOUR + 36_000).toISOString(), 'when the sweep found it lost')

      for (let ms = 18 * HOUR; ms <= 24 * HOUR; ms += 30 * MINUTE) {
        clock = at(ms)
        assert.equal((await beat(app, node, ++seq, clock)).status, 204)
      }
      const view = await app.admin()('GET', `/v1/nodes/${node.nodeId}`)
      assert.equal(view.body.status, 'online')
      assert.equal(view.body.lostAt, seen.body.lostAt, 'the last loss stays on record')
      // 18 h up of the 24 h since it enrolled: 75% over each window (its windows begin at enrollment).
      assert.deepEqual(view.body.uptimePercent, { '24h': 75, '7d': 75, '30d': 75 })
      assert.equal(view.body.sessions.length, 2)

      // A week later, silent since: lost, and the windows now hold 18 h of a longer span.
      clock = at(7 * 24 * HOUR)
      assert.equal(await sweep(clock), true)
      const week = await app.admin()('GET', `/v1/nodes/${node.nodeId}`)
      assert.deepEqual(week.body.uptimePercent, { '24h': 0, '7d': 10.71, '30d': 10.71 })
      const lines = await auditLines(database, (await ownerOf(node.nodeId))!)
      assert.deepEqual(
        lines.filter((l) => l.includes('node.')),
        [
          `account:${await operatorOf(node.nodeId)} node.enroll`,
          'system:fleet node.lost',
          'system:fleet node.recovered',
          'system:fleet node.lost',
        ],
      )
      assert.deepEqual(await outboxTypes(database, (await ownerOf(node.nodeId))!), [
        'node.lost',
        'node.recovered',
        'node.lost',
      ])
      const metrics = await app.metricsText()
      assert.match(
        metrics,
        new RegExp(`berth_fleet_node_uptime_percent\\{node="${node.nodeId}",window="7d"\\} 10.71`),
      )
    })

    it('never counts time lost as up: a node found lost starts a new session when heard again', async () => {
      clock = T0
      const node = await enrollTestNode(app)
      // A heartbeat every 29 minutes: within the session gap, but found lost in between each time.
      for (let i = 0; i <= 4; i++) {
        clock = at(i * 29 * MINUTE)
        assert.equal((await beat(app, node, i + 1, clock)).status, 204)
        await sweepAt(at(i * 29 * MINUTE + MINUTE))
      }
      assert.equal((await sessionsOf(node.nodeId)).length, 5, 'one session per heartbeat')
      clock = at(4 * 29 * MINUTE + MINUTE)
      const view = await app.admin()('GET', `/v1/nodes/${node.nodeId}`)
      assert.equal(view.body.status, 'lost')
      assert.deepEqual(view.body.uptimePercent, { '24h': 0, '7d': 0, '30d': 0 })
    })

    it('counts a node not yet found lost as up for at most its loss budget after it was last heard', async () => {
      clock = T0
      const node = await enrollTestNode(app)
      for (let i = 0; i <= 6; i++) {
        clock = at(i * 10 * MINUTE)
        assert.equal((await beat(app, node, i + 1, clock)).status, 204)
      }
      // An hour later, and no sweep has run (a control plane that has just started waits a budget):
      // up for the hour it was heard, plus the 35 s budget, of the two hours since its first heartbeat.
      clock = at(2 * HOUR)
      const view = await app.admin()('GET', `/v1/nodes/${node.nodeId}`)
      assert.equal(view.body.status, 'online')
      assert.equal(view.body.uptimePercent['24h'], 50.48)
    })

    it('gives every node a full budget from the control plane start before calling it lost', async () => {
      clock = T0
      const node = await enrollTestNode(app)
      assert.equal((await beat(app, node, 1, clock)).status, 204)
      const restartedAt = at(2 * HOUR)
      const after = (ms: number) => new Date(restartedAt.getTime() + ms)
      assert.ok(!(await sweepAt(after(34_000), restartedAt)).includes(node.nodeId))
      assert.ok((await sweepAt(after(36_000), restartedAt)).includes(node.nodeId))
    })

    async function ownerOf(nodeId: string) {
      return (
        await database.query<{ operator_id: string }>('select operator_id from fleet_nodes where id = $1', [
          nodeId,
        ])
      )[0]?.operator_id
    }
    async function operatorOf(nodeId: string) {
      return (
        await database.query<{ address: string }>(
          'select a.address from fleet_nodes n join accounts a on a.id = n.operator_id where n.id = $1',
          [nodeId],
        )
      )[0]?.address
    }
  })
}
