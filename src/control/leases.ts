import { and, eq, gt, sql } from 'drizzle-orm'
import { appendAudit } from '../audit/audit-log.ts'
import { type Database, numberedSql, queryRows } from '../db/client.ts'
import { columnByKey, columnsOf, type DeploymentRow, type Fence, fromDriver } from '../db/deployment-rows.ts'
import { deployments } from '../db/schema/index.ts'
import { actorLabel, systemSource } from '../domain/actor.ts'
import { LeaseLostError } from '../domain/errors.ts'
import { toldStatuses } from '../domain/event-types.ts'
import type { Status } from '../domain/lifecycle.ts'
import type { EventBus } from '../events/bus.ts'
import type { FencedChange } from './moves.ts'

// The reconciler's side of the deployments table: claiming due rows under a lease, and writes
// fenced by that lease. These are the hottest statements in berth, so they are plain SQL run on
// the driver, not built through drizzle on every call.

const NEVER = new Date('9999-12-31T00:00:00Z')

/** The status a write arrives at when its arrival is told (`deployment.<status>`). */
function toldArrival(from: Status, to: Status | undefined): (typeof toldStatuses)[number] | undefined {
  if (to === undefined || to === from) return undefined
  return (toldStatuses as readonly Status[]).includes(to) ? (to as (typeof toldStatuses)[number]) : undefined
}

export interface FencedWrites {
  /** Fenced write by the lease holder: refused with LeaseLostError once the lease has passed. */
  write(row: DeploymentRow, fence: Fence, change: FencedChange): Promise<DeploymentRow>
  claimDue(owner: string, limit: number, leaseSeconds: number): Promise<DeploymentRow[]>
  renewLease(id: string, fence: Fence, leaseSeconds: number): Promise<boolean>
}

export function createFencedWrites(database: Database, bus: EventBus): FencedWrites {
  const db = database.db
  return {
    async write(row, fence, change) {
      const events = change.events ?? []
      const params: unknown[] = []
      const param = (value: unknown) => {
        params.push(value)
        return `$${params.length}`
      }
      const sets: string[] = []
      for (const [key, value] of Object.entries(change.patch ?? {})) {
        if (value === undefined) continue
        const column = columnByKey.get(key)!
        sets.push(`${column.name} = ${param(value === null ? null : column.mapToDriverValue(value))}`)
      }
      const next =
        change.nextInMs === null
          ? param(NEVER.toISOString())
          : change.nextInMs === undefined
            ? undefined
            : `now() + ${param(Math.max(0, Math.round(change.nextInMs)))} * interval '1 millisecond'`
      if (next !== undefined) {
        // Something asked for a look while this step ran: an intent (stop, start, restart, delete
        // changed the desired state or restart generation) or a mark-due (an engine event) moved
        // next_reconcile_at past what this holder last saw. It is looked at now, not after this
        // step's delay. (The 1 ms allows for the row's time having more precision than a Date.)
        sets.push(
          `next_reconcile_at = case when desired_state <> ${param(row.desiredState)}
                                      or restart_generation <> ${param(row.restartGeneration)}
                                      or next_reconcile_at > ${param(new Date(row.nextReconcileAt).toISOString())}::timestamptz
                                                             + interval '1 millisecond'
                                    then now() else ${next} end`,
        )
      }
      if (!change.keepLease) sets.push('lease_owner = null', 'lease_expires_at = null')
      sets.push(`event_seq = event_seq + ${events.length}`, 'updated_at = now()')
      // A status worth telling (running, failed, …) arriving goes to the outbox in this same
      // statement: the change and its outbox event commit together or not at all.
      const told = toldArrival(row.status, change.patch?.status)
      const outbox = told
        ? `,
        o as (
          insert into outbox_events (owner_id, type, deployment_id, payload)
          select u.owner_id, ${param(`deployment.${told}`)}, u.id,
                 jsonb_build_object('deploymentId', u.id, 'name', u.name, 'status', u.status,
                                    'previousStatus', ${param(row.status)}::text, 'error', u.error,
                                    'stopReason', u.stop_reason)
            from u
          returning 1)`
        : ''
      // One statement, so one round trip: the fenced update and the insert of its events commit
      // together (data-modifying CTEs all run, atomically). A lost lease updates no row, and then
      // no event is inserted either. Written as plain SQL because this is the hottest statement.
      const text = `
        with u as (
          update deployments set ${sets.join(', ')}
           where id = ${param(row.id)} and lease_owner = ${param(fence.owner)}
             and lease_token = ${param(fence.token)} and lease_expires_at > now()
          returning *),
        e as (
          insert into deployment_events
            (deployment_id, seq, type, status, stage, percent, message, data, actor, lease_token)
          select u.id, u.event_seq - ${events.length} + ev.ord, ev.v->>'type', ev.v->>'status', ev.v->>'stage',
                 (ev.v->>'percent')::int, ev.v->>'message', ev.v->'data',
                 ${param(actorLabel(systemSource(fence.owner).actor))}::text, ${param(fence.token)}::bigint
            from u cross join jsonb_array_elements(${param(JSON.stringify(events))}::jsonb) with ordinality as ev(v, ord)
          returning 1)${outbox}
        select ${columnsOf('u')} from u`
      // A deployment failing is one of the things berth does on its own that its owner's audit log
      // records; that (rare) write takes a transaction, every other one stays a single statement.
      const failing = change.patch?.status === 'failed' && row.status !== 'failed'
      const [raw] = failing
        ? await database.db.transaction(async (tx) => {
            const rows = await queryRows<Record<string, unknown>>(tx, numberedSql(text, params))
            if (rows.length === 0) return rows
            await appendAudit(tx, [
              {
                ownerId: row.ownerId,
                source: systemSource(fence.owner),
                action: 'deployment.failed',
                target: `deployment:${row.id}`,
                detail: { name: row.name, error: change.patch?.error ?? null },
              },
            ])
            return rows
          })
        : await database.query(text, params)
      if (!raw) throw new LeaseLostError(row.id)
      const updated = fromDriver(raw)
      if (events.length > 0 || change.patch) bus.changed(updated.id, updated.ownerId)
      return updated
    },

    async claimDue(owner, limit, leaseSeconds) {
      // One statement claims a batch: SKIP LOCKED lets concurrent claimers (other replicas) take
      // different rows instead of queueing behind each other; the lease expiry is what lets work
      // move on when its holder dies, and the incremented token fences the old holder's writes.
      const rows = await database.query(
        `update deployments d
            set lease_owner = $1,
                lease_token = d.lease_token + 1,
                lease_expires_at = now() + $2 * interval '1 second'
          where d.id in (
            select id from deployments
             where status <> 'deleted'
               and next_reconcile_at <= now()
               and (lease_expires_at is null or lease_expires_at < now())
             order by next_reconcile_at
             limit $3
             for update skip locked)
          returning ${columnsOf('d')}`,
        [owner, leaseSeconds, limit],
      )
      return rows.map(fromDriver)
    },

    async renewLease(id, fence, leaseSeconds) {
      const rows = await db
        .update(deployments)
        .set({ leaseExpiresAt: sql`now() + ${`${leaseSeconds} seconds`}::interval` })
        .where(
          and(
            eq(deployments.id, id),
            eq(deployments.leaseOwner, fence.owner),
            eq(deployments.leaseToken, fence.token),
            gt(deployments.leaseExpiresAt, sql`now()`),
          ),
        )
        .returning({ id: deployments.id })
      return rows.length > 0
    },
  }
}
