import { appendAudit } from '../audit/audit-log.ts'
import type { Db } from '../db/client.ts'
import { numberedSql, queryRows } from '../db/client.ts'
import { systemSource } from '../domain/actor.ts'
import { rescheduleDelayMs } from '../domain/node.ts'
import { removePlacements } from './placements.ts'

// Replicas leave a node in two cases: the node was lost and stayed lost for the reschedule delay,
// or its operator drains it. The move itself is the deployment's next apply (fleet-provider.ts);
// this only makes each deployment concerned due at the moment its move becomes possible, once per
// node and reason, so nothing waits for a resync. A draining node with nothing left on it is
// cordoned: its drain is complete.

interface Concerned {
  deployment_id: string
  node_id: string
  connectivity: 'online' | 'lost'
  scheduling: string
  lost_at: Date | string | null
  loss_count: number
}

export function createMover(db: Db, rescheduleDelaySeconds: number) {
  const movableAt = (row: Concerned) =>
    row.lost_at === null
      ? Number.POSITIVE_INFINITY
      : new Date(row.lost_at).getTime() + rescheduleDelayMs(rescheduleDelaySeconds, row.loss_count)

  /** Deployment/node/reason keys already made due: each is made due once. */
  let prodded = new Set<string>()

  return {
    /** The deployments that have a replica to move now and were not made due for it yet. */
    async due(at: Date): Promise<string[]> {
      const rows = await queryRows<Concerned>(
        db,
        numberedSql(
          `select distinct p.deployment_id, p.node_id, n.connectivity, n.scheduling, n.lost_at, n.loss_count
           from fleet_placements p join fleet_nodes n on n.id = p.node_id
           where not p.stopped and (n.connectivity = 'lost' or n.scheduling = 'draining')`,
          [],
        ),
      )
      const seen = new Set<string>()
      const due = new Set<string>()
      for (const row of rows) {
        const movable =
          row.connectivity === 'lost' ? movableAt(row) <= at.getTime() : row.scheduling === 'draining'
        // Lost: made due once when lost (its replica is missing) and once when it may move.
        const key = `${row.deployment_id}/${row.node_id}/${row.connectivity}/${row.scheduling}/${movable}`
        seen.add(key)
        if (!prodded.has(key)) due.add(row.deployment_id)
      }
      prodded = seen
      return [...due]
    },

    /**
     * Takes stopped deployments' replicas off draining nodes, and off lost ones once they may move
     * (no apply will come to move them: they are placed again when started). Returns the nodes.
     */
    async releaseStopped(at: Date): Promise<string[]> {
      const rows = await queryRows<Concerned & { replica: number }>(
        db,
        numberedSql(
          `select p.deployment_id, p.replica, p.node_id, n.connectivity, n.scheduling, n.lost_at, n.loss_count
           from fleet_placements p join fleet_nodes n on n.id = p.node_id
           where p.stopped and (n.connectivity = 'lost' or n.scheduling = 'draining')`,
          [],
        ),
      )
      const leaving = rows.filter((row) => row.scheduling === 'draining' || movableAt(row) <= at.getTime())
      if (leaving.length === 0) return []
      await removePlacements(
        db,
        `delete from fleet_placements p using jsonb_to_recordset($1::jsonb) as m(d uuid, r int, n uuid)
         where p.deployment_id = m.d and p.replica = m.r and p.node_id = m.n and p.stopped`,
        [JSON.stringify(leaving.map((row) => ({ d: row.deployment_id, r: row.replica, n: row.node_id })))],
        at,
      )
      return [...new Set(leaving.map((row) => row.node_id))]
    },

    /** Cordons draining nodes that have nothing placed on them any more; returns their ids. */
    async finishDrains(at: Date): Promise<string[]> {
      return db.transaction(async (tx) => {
        const drained = await queryRows<{ id: string; operator_id: string }>(
          tx,
          numberedSql(
            `update fleet_nodes set scheduling = 'cordoned'
             where scheduling = 'draining' and removed_at is null
               and not exists (select 1 from fleet_placements p where p.node_id = fleet_nodes.id)
             returning id, operator_id`,
            [],
          ),
        )
        if (drained.length === 0) return []
        await appendAudit(
          tx,
          drained.map((node) => ({
            ownerId: node.operator_id,
            source: systemSource('fleet'),
            action: 'node.drained',
            target: `node:${node.id}`,
          })),
          at,
        )
        return drained.map((node) => node.id)
      })
    },
  }
}
