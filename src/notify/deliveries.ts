import { sql } from 'drizzle-orm'
import { type Database, queryRows } from '../db/client.ts'
import { appendOutbox } from '../events/outbox.ts'
import { attemptsAllowed, retryDelayMs } from './retry-schedule.ts'
import type { Attempt } from './senders.ts'

// The delivery rows: claimed under a lease, one attempt made, the outcome written back fenced by
// that lease. A process that dies mid-attempt leaves its claim to expire; the attempt is then made
// again (at least once, never lost; receivers tell repeats apart by webhook-id).

export interface ClaimedDelivery {
  id: string
  eventSeq: number
  targetId: string
  attempts: number
  createdAt: Date
}

/**
 * Claims up to `limit` due deliveries, never more than `perTarget` in flight at one target
 * (counting those other processes hold). Each target with pending work offers its own oldest due
 * rows, so a long backlog at one slow or failing endpoint never hides the others' work; the
 * targets are found by skipping through the pending index one target at a time, which costs as
 * many steps as there are targets with work, not rows. Candidates are locked with SKIP LOCKED, so
 * concurrent claimers take different rows; the window functions run over the locked candidates
 * (PostgreSQL does not allow them in the locking query itself).
 */
export async function claimDue(
  database: Database,
  owner: string,
  options: { limit: number; perTarget: number; leaseSeconds: number },
): Promise<ClaimedDelivery[]> {
  const rows = await database.query<{
    id: string
    event_seq: string
    target_id: string
    attempts: number
    created_at: Date | string
  }>(
    `with recursive waiting(target_id) as (
       (select target_id from notify_deliveries where state = 'pending' order by target_id limit 1)
       union all
       select (select d.target_id from notify_deliveries d
                where d.state = 'pending' and d.target_id > waiting.target_id
                order by d.target_id limit 1)
         from waiting where waiting.target_id is not null),
     due as (
       select c.id, c.target_id, c.next_attempt_at
         from waiting
         cross join lateral (
           select id, target_id, next_attempt_at from notify_deliveries
            where target_id = waiting.target_id and state = 'pending' and next_attempt_at <= now()
              and (lease_expires_at is null or lease_expires_at < now())
            order by next_attempt_at
            limit $4
            for update skip locked) c
        where waiting.target_id is not null),
     busy as (
       select target_id, count(*) as n from notify_deliveries
        where state = 'pending' and lease_expires_at >= now()
          and target_id in (select target_id from due)
        group by target_id),
     ranked as (
       select due.id, due.next_attempt_at,
              row_number() over (partition by due.target_id order by due.next_attempt_at) + coalesce(busy.n, 0) as at_target
         from due left join busy on busy.target_id = due.target_id),
     chosen as (
       select id from ranked where at_target <= $4 order by at_target, next_attempt_at limit $3)
     update notify_deliveries d
        set lease_owner = $1, lease_expires_at = now() + $2 * interval '1 second'
       from chosen where d.id = chosen.id
     returning d.id, d.event_seq, d.target_id, d.attempts, d.created_at`,
    [owner, options.leaseSeconds, options.limit, options.perTarget],
  )
  return rows.map((r) => ({
    id: r.id,
    eventSeq: Number(r.event_seq),
    targetId: r.target_id,
    attempts: r.attempts,
    createdAt: new Date(r.created_at),
  }))
}

export interface Outcome {
  delivery: ClaimedDelivery
  attempt: Attempt
  /** The target is gone, disabled or deleted: the delivery ends without an attempt being counted. */
  cancelled?: string
}

export interface TargetEnd {
  targetId: string
  ownerId: string | null
  kind: string
  shown: string
  reason: 'gone' | 'failing'
}

/**
 * Writes an attempt's outcome, unless the claim is no longer this sender's or the delivery ended
 * meanwhile (its target deleted or turned off). A failure is tried again after the schedule's next delay, or fails
 * for good at its end. Returns the target to turn off, when this attempt says so: it answered
 * 410 (gone), or this delivery failed the whole schedule and nothing reached the target since it
 * was made (failing).
 */
export async function recordOutcome(
  database: Database,
  owner: string,
  outcome: Outcome,
  delaysSeconds: readonly number[],
): Promise<'gone' | 'failing' | undefined> {
  const { delivery, attempt } = outcome
  const attempts = delivery.attempts + (outcome.cancelled ? 0 : 1)
  const delay =
    attempt.ok || attempt.gone || outcome.cancelled ? undefined : retryDelayMs(attempts, delaysSeconds)
  const state = outcome.cancelled
    ? 'cancelled'
    : attempt.ok
      ? 'succeeded'
      : delay === undefined
        ? 'failed'
        : 'pending'
  const [written] = await database.query<{ id: string }>(
    `update notify_deliveries
        set state = $3, attempts = $4,
            next_attempt_at = case when $5::bigint is null then null else now() + $5::bigint * interval '1 millisecond' end,
            lease_owner = null, lease_expires_at = null,
            last_status = $6, last_latency_ms = $7, last_error = $8,
            last_attempt_at = case when $9 then last_attempt_at else now() end
      where id = $1 and lease_owner = $2 and state = 'pending'
      returning id`,
    [
      delivery.id,
      owner,
      state,
      attempts,
      delay ?? null,
      attempt.status,
      attempt.latencyMs,
      outcome.cancelled ?? attempt.error ?? null,
      outcome.cancelled !== undefined,
    ],
  )
  if (!written) return undefined
  if (attempt.gone) return 'gone'
  if (state !== 'failed' || attempts < attemptsAllowed(delaysSeconds)) return undefined
  const [reached] = await database.query(
    `select 1 from notify_deliveries
      where target_id = $1 and state = 'succeeded' and last_attempt_at >= $2 limit 1`,
    [delivery.targetId, delivery.createdAt.toISOString()],
  )
  return reached ? undefined : 'failing'
}

/**
 * Turns a target off for what berth saw, cancels what waits for it, and tells its owner (through
 * every other target: the event is not sent to the one turned off, which is no longer enabled).
 */
export async function turnOff(database: Database, end: TargetEnd): Promise<void> {
  await database.db.transaction(async (tx) => {
    const [changed] = await queryRows<{ id: string }>(
      tx,
      sql`update notify_targets set enabled = false, disabled_reason = ${end.reason}, updated_at = now()
           where id = ${end.targetId} and enabled returning id`,
    )
    if (!changed) return
    await tx.execute(
      sql`update notify_deliveries set state = 'cancelled', last_error = ${`the target was turned off (${end.reason})`}
           where target_id = ${end.targetId} and state = 'pending' and lease_owner is null`,
    )
    if (end.ownerId === null) return
    await appendOutbox(tx, [
      {
        ownerId: end.ownerId,
        type: 'webhook.disabled',
        payload: { targetId: end.targetId, kind: end.kind, shown: end.shown, reason: end.reason },
      },
    ])
  })
}
