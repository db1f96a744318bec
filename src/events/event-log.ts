import { and, asc, eq, gt, sql } from 'drizzle-orm'
import type { Database } from '../db/client.ts'
import { deploymentEvents, deployments } from '../db/schema/index.ts'
import { type Actor, actorLabel } from '../domain/actor.ts'
import { notFound } from '../domain/errors.ts'
import type { ProgressStage, Status } from '../domain/lifecycle.ts'
import type { EventBus } from './bus.ts'

// A deployment's events: append-only, numbered 1, 2, 3… with no gaps. The number comes from the
// deployment row itself (event_seq), bumped in the same statement or transaction that inserts the
// events, so whoever writes (a request, the reconciler, billing) the numbers never collide or skip.

export type EventRow = typeof deploymentEvents.$inferSelect

export interface EventInput {
  type: string
  status?: Status
  stage?: ProgressStage
  percent?: number
  message?: string
  data?: unknown
}

export interface EventLog {
  /** Events after `afterSeq`, oldest first. */
  list(deploymentId: string, afterSeq: number, limit: number): Promise<EventRow[]>
  /** Appends an event that changes nothing else (a warning, a notice) on `actor`'s behalf. */
  note(ownerId: string, deploymentId: string, actor: Actor, event: EventInput): Promise<void>
}

/**
 * The rows to insert for `events` written on someone's behalf (the reconciler inserts its own in
 * its fenced statement, leases.ts), numbered up to `lastSeq`, the row's event_seq after the bump.
 * `actor` names who: `account:0x…`, `key:<id>`, `system:billing` (domain/actor.ts).
 */
export function eventRowsOf(deploymentId: string, lastSeq: number, actor: string, events: EventInput[]) {
  return events.map((e, i) => ({
    deploymentId,
    seq: lastSeq - events.length + i + 1,
    type: e.type,
    status: e.status ?? null,
    stage: e.stage ?? null,
    percent: e.percent ?? null,
    message: e.message ?? null,
    data: e.data ?? null,
    actor,
    leaseToken: null,
  }))
}

export function createEventLog(database: Database, bus: EventBus): EventLog {
  const db = database.db
  return {
    list(deploymentId, afterSeq, limit) {
      return db
        .select()
        .from(deploymentEvents)
        .where(and(eq(deploymentEvents.deploymentId, deploymentId), gt(deploymentEvents.seq, afterSeq)))
        .orderBy(asc(deploymentEvents.seq))
        .limit(limit)
    },

    async note(ownerId, deploymentId, actor, event) {
      const row = await db.transaction(async (tx) => {
        const [updated] = await tx
          .update(deployments)
          .set({ eventSeq: sql`${deployments.eventSeq} + 1`, updatedAt: sql`now()` })
          .where(and(eq(deployments.id, deploymentId), eq(deployments.ownerId, ownerId)))
          .returning()
        if (!updated) throw notFound(`deployment ${deploymentId}`)
        await tx
          .insert(deploymentEvents)
          .values(eventRowsOf(deploymentId, updated.eventSeq, actorLabel(actor), [event]))
        return updated
      })
      bus.changed(row.id, row.ownerId)
    },
  }
}
