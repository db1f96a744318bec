import { type AuditRecord, appendAudit } from '../audit/audit-log.ts'
import type { Database } from '../db/client.ts'
import { numberedSql, queryRows } from '../db/client.ts'
import { createGroupCommit } from '../db/group-commit.ts'
import { systemSource } from '../domain/actor.ts'
import { BerthError, conflict } from '../domain/errors.ts'
import { applyHeartbeat } from '../domain/uptime.ts'
import { appendOutbox } from '../events/outbox.ts'
import type { Heartbeat } from './node-schemas.ts'

// Writes verified heartbeats: the node's last sequence, time, size and instances, and its uptime
// session, for many heartbeats in one transaction (group commit: at thousands of heartbeats a
// second the commits, not the rows, are the cost). The node rows are locked first, so the
// sequence check and the write are one step: of two copies of one heartbeat, exactly one lands.

export interface VerifiedHeartbeat {
  heartbeat: Heartbeat
  /** When the control plane received it: uptime is measured by the server's clock. */
  receivedAt: Date
}

export type HeartbeatOutcome = { ok: true; recovered: boolean } | { ok: false; error: BerthError }

interface NodeState {
  id: string
  operator_id: string
  last_seq: string | number
  last_seen_at: Date | string
  session_started_at: Date | string | null
  connectivity: 'online' | 'lost'
  removed_at: Date | string | null
}

// `id = any(array(…))` rather than a join with the JSON's rows: the planner guesses 100 rows for
// a JSON function and hash-joins them against a scan of every node (1 ms per 10,000 nodes, per
// batch); an array of ids is looked up in the primary key.
const LOCK_NODES = `
  select id, operator_id, last_seq, last_seen_at, session_started_at, connectivity, removed_at
  from fleet_nodes where id = any(array(select value::uuid from jsonb_array_elements_text($1::jsonb)))
  order by id for update`

/** The nodes' new state and their sessions, in one statement: a round trip less per batch. */
const WRITE_HEARTBEATS = `
  with v as (
    select * from jsonb_to_recordset($1::jsonb) as v(id uuid, seq bigint, at timestamptz,
      session_started_at timestamptz, capacity jsonb, allocatable jsonb, labels jsonb, version text,
      instances jsonb, usage jsonb)),
  nodes as (
    update fleet_nodes n set
      last_seq = v.seq, last_seen_at = v.at, session_started_at = v.session_started_at,
      first_heartbeat_at = coalesce(n.first_heartbeat_at, v.at),
      connectivity = 'online', capacity = v.capacity, allocatable = v.allocatable, labels = v.labels,
      agent_version = v.version, instances = v.instances, usage = v.usage
    from v
    where n.id = v.id and n.id = any(array(select (value->>'id')::uuid from jsonb_array_elements($1::jsonb))))
  insert into node_uptime_sessions (node_id, started_at, last_seen_at)
  select id, session_started_at, at from v
  on conflict (node_id, started_at) do update set last_seen_at = excluded.last_seen_at`

/** The closest two heartbeats of one node may follow each other. */
const MIN_GAP_MS = 500

const asDate = (value: Date | string) => (value instanceof Date ? value : new Date(value))

export function createHeartbeatWriter(database: Database, sessionGapSeconds: number) {
  const write = async (batch: VerifiedHeartbeat[]): Promise<HeartbeatOutcome[]> =>
    database.db.transaction(async (tx) => {
      const ids = [...new Set(batch.map((b) => b.heartbeat.nodeId))]
      const rows = await queryRows<NodeState>(tx, numberedSql(LOCK_NODES, [JSON.stringify(ids)]))
      const nodes = new Map(rows.map((row) => [row.id, row]))
      const outcomes: HeartbeatOutcome[] = []
      // The last accepted write per node: a batch may hold several heartbeats of one node.
      const writes = new Map<string, Record<string, unknown>>()
      const recovered: AuditRecord[] = []
      for (const { heartbeat, receivedAt } of batch) {
        const node = nodes.get(heartbeat.nodeId)
        if (!node || node.removed_at) {
          outcomes.push({ ok: false, error: unknownNode(heartbeat.nodeId) })
          continue
        }
        const lastSeq = Number(node.last_seq)
        if (heartbeat.seq <= lastSeq) {
          outcomes.push({
            ok: false,
            error: conflict(
              `heartbeat sequence ${heartbeat.seq} is not above the last accepted ${lastSeq}: a replay or out of order`,
            ),
          })
          continue
        }
        // A node must not turn its key into a write load: heartbeats closer together than this
        // are refused (429) without a write. Agents send one per interval (seconds apart).
        if (
          node.session_started_at &&
          receivedAt.getTime() - asDate(node.last_seen_at).getTime() < MIN_GAP_MS
        ) {
          outcomes.push({
            ok: false,
            error: new BerthError(
              'rate_limited',
              `node ${node.id} sends heartbeats more often than twice a second`,
            ),
          })
          continue
        }
        // A node found lost starts a new session however short its silence was: the time it was
        // lost is never counted as up.
        const wasLost = node.connectivity === 'lost'
        const current =
          node.session_started_at && !wasLost
            ? { startedAt: asDate(node.session_started_at), lastSeenAt: asDate(node.last_seen_at) }
            : null
        const { session } = applyHeartbeat(current, receivedAt, sessionGapSeconds)
        if (wasLost) {
          recovered.push({
            ownerId: node.operator_id,
            source: systemSource('fleet'),
            action: 'node.recovered',
            target: `node:${node.id}`,
          })
        }
        node.last_seq = heartbeat.seq
        node.last_seen_at = session.lastSeenAt
        node.session_started_at = session.startedAt
        node.connectivity = 'online'
        writes.set(node.id, {
          id: node.id,
          seq: heartbeat.seq,
          at: session.lastSeenAt,
          session_started_at: session.startedAt,
          capacity: heartbeat.capacity,
          allocatable: heartbeat.allocatable,
          labels: heartbeat.labels,
          version: heartbeat.version,
          instances: heartbeat.instances,
          usage: heartbeat.usage,
        })
        outcomes.push({ ok: true, recovered: wasLost })
      }
      if (writes.size > 0) {
        await tx.execute(numberedSql(WRITE_HEARTBEATS, [JSON.stringify([...writes.values()])]))
      }
      if (recovered.length > 0) {
        await appendOutbox(
          tx,
          recovered.map((r) => ({
            ownerId: r.ownerId,
            type: 'node.recovered' as const,
            payload: { nodeId: r.target.slice('node:'.length) },
          })),
        )
        await appendAudit(tx, recovered)
      }
      return outcomes
    })
  return createGroupCommit(write, {
    maxBatch: 256,
    maxInFlight: 2,
    // Ten seconds of heartbeats at a thousand a second: past it, waiting would outlast their use.
    maxQueued: 10_000,
    busy: () =>
      new BerthError('rate_limited', 'berth is busy: too many heartbeats are waiting; send the next one'),
  })
}

export const unknownNode = (id: string) =>
  new BerthError('not_found', `node ${id} is not enrolled here (or was removed): enroll the agent again`)
