import type { Logger } from 'pino'
import { appendAudit } from '../audit/audit-log.ts'
import type { Db } from '../db/client.ts'
import { numberedSql, queryRows } from '../db/client.ts'
import { systemSource } from '../domain/actor.ts'
import { type LossRule, lossBudgetMs, lostAt } from '../domain/uptime.ts'
import { appendOutbox } from '../events/outbox.ts'

// Finds nodes that went silent. A node is lost when it has not been heard from for three
// heartbeat intervals plus the grace; this sweep runs every second, so a node is marked within a
// second of its budget running out, whether or not anything else happens. A control plane that
// has just started heard nothing while it was down, so it counts every budget from its own start.

export interface LossSweepOptions {
  db: Db
  rule: LossRule
  /** When this control plane started: no node is lost before a full budget from here. */
  startedAt: Date
  now: () => Date
  logger: Logger
}

// Rows a heartbeat batch holds are skipped (that node is being heard from right now), and the rest
// are locked in id order like the batches lock theirs, so the sweep and a batch never deadlock.
const MARK_LOST = `
  update fleet_nodes set connectivity = 'lost', lost_at = $2,
    loss_count = case when lost_at > $2::timestamptz - interval '1 day' then loss_count + 1 else 1 end
  where id in (
    select id from fleet_nodes
    where connectivity = 'online' and removed_at is null and last_seen_at < $1
    order by id for update skip locked)
  returning id, operator_id, name, last_seen_at`

export async function sweepLostNodes(options: LossSweepOptions): Promise<string[]> {
  const { db, rule, startedAt } = options
  const at = options.now()
  // Nodes last seen before the cutoff are past their budget; none is, while the budget counted
  // from the control plane's start has not run out.
  const cutoff = new Date(at.getTime() - lossBudgetMs(rule))
  if (lostAt(cutoff, startedAt, rule) > at) return []
  return db.transaction(async (tx) => {
    const lost = await queryRows<{
      id: string
      operator_id: string
      name: string
      last_seen_at: Date | string
    }>(tx, numberedSql(MARK_LOST, [cutoff, at]))
    if (lost.length === 0) return []
    await appendOutbox(
      tx,
      lost.map((node) => ({
        ownerId: node.operator_id,
        type: 'node.lost' as const,
        payload: { nodeId: node.id, name: node.name, lastSeenAt: new Date(node.last_seen_at).toISOString() },
      })),
    )
    await appendAudit(
      tx,
      lost.map((node) => ({
        ownerId: node.operator_id,
        source: systemSource('fleet'),
        action: 'node.lost',
        target: `node:${node.id}`,
        detail: { name: node.name, lastSeenAt: new Date(node.last_seen_at).toISOString() },
      })),
      at,
    )
    options.logger.warn({ nodes: lost.map((n) => n.id) }, 'fleet nodes lost')
    return lost.map((n) => n.id)
  })
}
