import { appendAudit } from '../audit/audit-log.ts'
import type { Db } from '../db/client.ts'
import { numberedSql, queryRows } from '../db/client.ts'
import type { ChangeSource } from '../domain/actor.ts'
import { conflict, notFound } from '../domain/errors.ts'
import {
  type NodeConnectivity,
  type NodeResources,
  type NodeSchedulingState,
  type NodeStatus,
  nodeStatusOf,
  type ReportedInstance,
} from '../domain/node.ts'
import type { UptimeSession } from '../domain/uptime.ts'
import { percentOf, type UptimeWindow, uptimeOf } from './uptime-view.ts'

// Reading fleet nodes and the operator's actions on them (cordon, drain, remove). Every action is
// written to the node operator's audit log: it changes what their machine earns.

export interface NodeView {
  id: string
  name: string
  /** The node operator's wallet. */
  operator: string
  status: NodeStatus
  connectivity: NodeConnectivity
  scheduling: NodeSchedulingState
  labels: Record<string, string>
  capacity: NodeResources | null
  allocatable: NodeResources | null
  agentVersion: string | null
  instances: ReportedInstance[]
  lastSeenAt: Date
  /** When the sweep last found the node lost (kept after it returns); null if it never was. */
  lostAt: Date | null
  enrolledAt: Date
  /** Percent of each window the node was up, two decimals. */
  uptimePercent: Record<UptimeWindow, number>
}

export interface NodeDetail extends NodeView {
  /** Uptime sessions of the last 30 days, newest first. */
  sessions: Array<{ startedAt: Date; lastSeenAt: Date }>
  /** The replicas placed on the node and what each holds of it. */
  reservations: Reservation[]
}

export interface Reservation {
  deploymentId: string
  replica: number
  milliCpus: number
  memoryMb: number
  diskMb: number
  gpus: number
  placedAt: Date
  reason: string
}

interface NodeRow {
  id: string
  name: string
  operator: string
  connectivity: NodeConnectivity
  scheduling: NodeSchedulingState
  labels: Record<string, string>
  capacity: NodeResources | null
  allocatable: NodeResources | null
  agent_version: string | null
  instances: ReportedInstance[]
  last_seen_at: Date | string
  lost_at: Date | string | null
  enrolled_at: Date | string
  first_heartbeat_at: Date | string | null
  session_started_at: Date | string | null
}

const SELECT_NODES = `
  select n.id, n.name, a.address as operator, n.connectivity, n.scheduling, n.labels, n.capacity,
    n.allocatable, n.agent_version, n.instances, n.last_seen_at, n.lost_at, n.enrolled_at, n.first_heartbeat_at,
    n.session_started_at
  from fleet_nodes n join accounts a on a.id = n.operator_id
  where n.removed_at is null`

const SESSIONS_SINCE = `
  select node_id, started_at, last_seen_at from node_uptime_sessions
  where node_id = any(array(select value::uuid from jsonb_array_elements_text($1::jsonb))) and last_seen_at > $2
  order by started_at desc`

const toDate = (value: Date | string) => (value instanceof Date ? value : new Date(value))
const MONTH_MS = 30 * 86_400_000

/** `lossBudgetMs`: how long a node may be silent before it counts as lost (domain/uptime.ts). */
export function createNodes(db: Db, now: () => Date, lossBudgetMs: number) {
  const sessionsOf = async (ids: string[], at: Date) => {
    const byNode = new Map<string, UptimeSession[]>()
    if (ids.length === 0) return byNode
    const rows = await queryRows<{ node_id: string; started_at: Date | string; last_seen_at: Date | string }>(
      db,
      numberedSql(SESSIONS_SINCE, [JSON.stringify(ids), new Date(at.getTime() - MONTH_MS)]),
    )
    for (const row of rows) {
      const list = byNode.get(row.node_id) ?? []
      list.push({ startedAt: toDate(row.started_at), lastSeenAt: toDate(row.last_seen_at) })
      byNode.set(row.node_id, list)
    }
    return byNode
  }

  const viewsOf = async (rows: NodeRow[]): Promise<Array<NodeView & { sessions: UptimeSession[] }>> => {
    const at = now()
    const sessions = await sessionsOf(
      rows.map((r) => r.id),
      at,
    )
    return rows.map((row) => {
      const own = sessions.get(row.id) ?? []
      // A node not (yet) found lost is counted up until now, but never beyond its loss budget
      // after it was last heard (a control plane that has just started finds nothing lost for a
      // budget, and a node that died while it was down must not be up all that time). Once the
      // sweep finds it lost its session ends where it was last heard.
      const openUntil = new Date(Math.min(at.getTime(), toDate(row.last_seen_at).getTime() + lossBudgetMs))
      const open = row.session_started_at && toDate(row.session_started_at).getTime()
      const counted =
        row.connectivity === 'online'
          ? own.map((s) => (s.startedAt.getTime() === open ? { ...s, lastSeenAt: openUntil } : s))
          : own
      const uptime = row.first_heartbeat_at
        ? uptimeOf(counted, toDate(row.first_heartbeat_at), at)
        : { '24h': 0, '7d': 0, '30d': 0 }
      return {
        id: row.id,
        name: row.name,
        operator: row.operator,
        status: nodeStatusOf(row.connectivity, row.scheduling),
        connectivity: row.connectivity,
        scheduling: row.scheduling,
        labels: row.labels,
        capacity: row.capacity,
        allocatable: row.allocatable,
        agentVersion: row.agent_version,
        instances: row.instances,
        lastSeenAt: toDate(row.last_seen_at),
        lostAt: row.lost_at === null ? null : toDate(row.lost_at),
        enrolledAt: toDate(row.enrolled_at),
        uptimePercent: {
          '24h': percentOf(uptime['24h']),
          '7d': percentOf(uptime['7d']),
          '30d': percentOf(uptime['30d']),
        },
        sessions: own,
      }
    })
  }

  const listWhere = async (where: string, params: unknown[]) =>
    viewsOf(
      await queryRows<NodeRow>(
        db,
        numberedSql(`${SELECT_NODES} ${where} order by n.enrolled_at, n.id`, params),
      ),
    )

  const withoutSessions = ({ sessions: _, ...view }: NodeView & { sessions: UptimeSession[] }): NodeView =>
    view

  return {
    async list(): Promise<NodeView[]> {
      return (await listWhere('', [])).map(withoutSessions)
    },

    async listOfOperator(operatorId: string): Promise<NodeView[]> {
      return (await listWhere('and n.operator_id = $1', [operatorId])).map(withoutSessions)
    },

    /** One node with its sessions; `operatorId` limits it to that operator's nodes (404 otherwise). */
    async get(id: string, operatorId?: string): Promise<NodeDetail> {
      const [view] = operatorId
        ? await listWhere('and n.id = $1 and n.operator_id = $2', [id, operatorId])
        : await listWhere('and n.id = $1', [id])
      if (!view) throw notFound(`node ${id}`)
      const reservations = await queryRows<{
        deployment_id: string
        replica: number
        milli_cpus: string | number
        memory_mb: string | number
        disk_mb: string | number
        gpus: number
        placed_at: Date | string
        reason: string
      }>(
        db,
        numberedSql(
          `select deployment_id, replica, milli_cpus, memory_mb, disk_mb, gpus, placed_at, reason
           from fleet_placements where node_id = $1 order by placed_at, deployment_id, replica`,
          [id],
        ),
      )
      return {
        ...withoutSessions(view),
        sessions: view.sessions,
        reservations: reservations.map((r) => ({
          deploymentId: r.deployment_id,
          replica: r.replica,
          milliCpus: Number(r.milli_cpus),
          memoryMb: Number(r.memory_mb),
          diskMb: Number(r.disk_mb),
          gpus: r.gpus,
          placedAt: toDate(r.placed_at),
          reason: r.reason,
        })),
      }
    },

    /** Cordon (no new replicas), drain (move them away, then cordon) or make it active again. */
    async setScheduling(
      id: string,
      scheduling: NodeSchedulingState,
      source: ChangeSource,
    ): Promise<NodeDetail> {
      await db.transaction(async (tx) => {
        // Locked first, so that of two concurrent changes each sees the other's result and a
        // change that changes nothing writes no audit entry.
        const [node] = await queryRows<{ operator_id: string; scheduling: NodeSchedulingState }>(
          tx,
          numberedSql(
            'select operator_id, scheduling from fleet_nodes where id = $1 and removed_at is null for update',
            [id],
          ),
        )
        if (!node) throw notFound(`node ${id}`)
        if (node.scheduling === scheduling) return
        await tx.execute(
          numberedSql('update fleet_nodes set scheduling = $2 where id = $1', [id, scheduling]),
        )
        const action = { active: 'node.uncordon', cordoned: 'node.cordon', draining: 'node.drain' }[
          scheduling
        ]
        await appendAudit(tx, [{ ownerId: node.operator_id, source, action, target: `node:${id}` }])
      })
      return this.get(id)
    },

    /**
     * Takes the node out of the fleet; refused while replicas are placed on it (drain it first).
     * What the node itself reports running does not count: a hostile node could claim anything.
     */
    async remove(id: string, source: ChangeSource): Promise<void> {
      await db.transaction(async (tx) => {
        const [node] = await queryRows<{ operator_id: string }>(
          tx,
          numberedSql('select operator_id from fleet_nodes where id = $1 and removed_at is null for update', [
            id,
          ]),
        )
        if (!node) throw notFound(`node ${id}`)
        // Counted after the lock, in a statement of its own: it then sees a placement that was
        // committed while this waited for the node (placements lock the node too).
        const [placed] = await queryRows<{ n: string | number }>(
          tx,
          numberedSql('select count(*) as n from fleet_placements where node_id = $1', [id]),
        )
        if (Number(placed!.n) > 0) {
          throw conflict(`node ${id} still holds ${placed!.n} replica(s): drain it first`)
        }
        await tx.execute(
          numberedSql(`update fleet_nodes set removed_at = $2, scheduling = 'cordoned' where id = $1`, [
            id,
            now(),
          ]),
        )
        await appendAudit(tx, [
          { ownerId: node.operator_id, source, action: 'node.remove', target: `node:${id}` },
        ])
      })
    },
  }
}

export type Nodes = ReturnType<typeof createNodes>
