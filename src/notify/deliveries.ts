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

/** Claims run one at a time across processes (see claimDue). */
const CLAIM_LOCK = sql`hashtextextended('berth/notify-claim', 0)`
/** The row (of the table named `t` in the query) is pending and no process holds a live claim on it. */
const claimable = (t: string) =>
  sql.raw(`${t}.state = 'pending' and (${t}.lease_expires_at is null or ${t}.lease_expires_at < now())`)

/**
 * Claims up to `limit` due deliveries, never more than `perTarget` in flight at one target nor
 * `perOwner` for one owner over all its targets (counting what other processes hold), so neither
 * one slow endpoint nor one owner's many can take the slots everyone shares. Each target with
 * work offers its own oldest due rows, so a long backlog at one endpoint never hides the others'
 * work: the targets are found by skipping through the pending index one target at a time (as many
 * steps as there are targets with pending rows, not rows), those at a limit are passed over, and
 * the ones whose oldest due row waited longest come first.
 *
 * Claims take a transaction-scoped advisory lock and so run one at a time: each then sees the
 * leases the one before committed, which is what keeps the limits across processes (row locks
 * alone would not: a claimer skips rows another holds but cannot count them). A claim is a few
 * index probes per target with work, so the wait is short.
 */
export async function claimDue(
  database: Database,
  owner: string,
  options: { limit: number; perTarget: number; perOwner: number; leaseSeconds: number },
): Promise<ClaimedDelivery[]> {
  const { limit, perTarget, perOwner, leaseSeconds } = options
  const rows = await database.db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${CLAIM_LOCK})`)
    return queryRows<{
      id: string
      event_seq: string
      target_id: string
      attempts: number
      created_at: Date | string
    }>(
      tx,
      sql`with recursive waiting(target_id) as (
            (select target_id from notify_deliveries where state = 'pending' order by target_id limit 1)
            union all
            select (select d.target_id from notify_deliveries d
                     where d.state = 'pending' and d.target_id > waiting.target_id
                     order by d.target_id limit 1)
              from waiting where waiting.target_id is not null),
          leased as (
            select b.target_id, t.owner_id from notify_deliveries b
              join notify_targets t on t.id = b.target_id
             where b.state = 'pending' and b.lease_owner is not null and b.lease_expires_at >= now()),
          open as (
            select t.id as target_id, t.owner_id,
                   ${perTarget} - (select count(*) from leased where leased.target_id = t.id) as room,
                   ${perOwner} - (select count(*) from leased
                                   where leased.owner_id is not distinct from t.owner_id) as owner_room,
                   (select next_attempt_at from notify_deliveries o
                     where o.target_id = t.id and ${claimable('o')}
                     order by o.next_attempt_at limit 1) as oldest
              from waiting join notify_targets t on t.id = waiting.target_id),
          chosen_targets as (
            select * from open
             where room > 0 and owner_room > 0 and oldest <= now() order by oldest limit ${limit}),
          candidates as (
            select c.id, c.next_attempt_at, t.owner_id, t.owner_room,
                   row_number() over (partition by t.target_id order by c.next_attempt_at) as turn
              from chosen_targets t
              cross join lateral (
                select id, next_attempt_at from notify_deliveries
                 where target_id = t.target_id and ${claimable('notify_deliveries')} and next_attempt_at <= now()
                 order by next_attempt_at limit t.room) c),
          within_owner as (
            select id, next_attempt_at, turn, owner_room,
                   row_number() over (partition by owner_id order by turn, next_attempt_at) as owner_turn
              from candidates),
          chosen as (
            select id from within_owner where owner_turn <= owner_room
             order by turn, next_attempt_at limit ${limit})
          update notify_deliveries d
             set lease_owner = ${owner}, lease_expires_at = now() + ${leaseSeconds} * interval '1 second'
            from chosen
           where d.id = chosen.id and ${claimable('d')}
          returning d.id, d.event_seq, d.target_id, d.attempts, d.created_at`,
    )
  })
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
  reason: TargetEndReason
}

/** What one attempt's outcome asks of its target: to be turned off, and why. */
export type TargetEndReason = 'gone' | 'failing'

/**
 * Writes attempts' outcomes in one statement, each unless its claim is no longer this sender's or
 * the delivery ended meanwhile (its target deleted or turned off). A failure is tried again after
 * the schedule's next delay, or fails for good at its end. Returns, by delivery id, the targets to
 * turn off as these attempts say: one answered 410 (gone), or a delivery failed the whole schedule
 * and nothing reached its target since it was made (failing).
 */
export async function recordOutcomes(
  database: Database,
  owner: string,
  outcomes: readonly Outcome[],
  delaysSeconds: readonly number[],
): Promise<Map<string, TargetEndReason>> {
  const rows = outcomes.map(({ delivery, attempt, cancelled }) => {
    const attempts = delivery.attempts + (cancelled ? 0 : 1)
    const delay = attempt.ok || attempt.gone || cancelled ? undefined : retryDelayMs(attempts, delaysSeconds)
    const state = cancelled
      ? 'cancelled'
      : attempt.ok
        ? 'succeeded'
        : delay === undefined
          ? 'failed'
          : 'pending'
    return { delivery, attempt, cancelled, attempts, delay, state }
  })
  const written = await database.query<{ id: string }>(
    `update notify_deliveries d
        set state = v.state, attempts = v.attempts,
            next_attempt_at = case when v.delay_ms is null then null else now() + v.delay_ms * interval '1 millisecond' end,
            lease_owner = null, lease_expires_at = null,
            last_status = v.status, last_latency_ms = v.latency_ms, last_error = v.error,
            last_attempt_at = case when v.cancelled then d.last_attempt_at else now() end
       from unnest($2::uuid[], $3::text[], $4::int[], $5::bigint[], $6::int[], $7::int[], $8::text[], $9::boolean[])
            as v(id, state, attempts, delay_ms, status, latency_ms, error, cancelled)
      where d.id = v.id and d.lease_owner = $1 and d.state = 'pending'
      returning d.id`,
    [
      owner,
      rows.map((r) => r.delivery.id),
      rows.map((r) => r.state),
      rows.map((r) => r.attempts),
      rows.map((r) => r.delay ?? null),
      rows.map((r) => r.attempt.status),
      rows.map((r) => r.attempt.latencyMs),
      rows.map((r) => r.cancelled ?? r.attempt.error ?? null),
      rows.map((r) => r.cancelled !== undefined),
    ],
  )
  const ends = new Map<string, TargetEndReason>()
  const ours = new Set(written.map((w) => w.id))
  for (const r of rows) {
    if (!ours.has(r.delivery.id)) continue
    if (r.attempt.gone) ends.set(r.delivery.id, 'gone')
    else if (r.state === 'failed' && r.attempts >= attemptsAllowed(delaysSeconds)) {
      const [reached] = await database.query(
        `select 1 from notify_deliveries
          where target_id = $1 and state = 'succeeded' and last_attempt_at >= $2 limit 1`,
        [r.delivery.targetId, r.delivery.createdAt.toISOString()],
      )
      if (!reached) ends.set(r.delivery.id, 'failing')
    }
  }
  return ends
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
