import type { Database } from '../db/client.ts'

// What berth keeps of what it told: events, finished deliveries and in-app notifications are
// deleted once older than `notifications.retentionDays`, so a busy owner's history (or a hostile
// one's) cannot grow the database without end. An event still waiting for a delivery is kept
// whatever its age. Deleting in bounded batches keeps each statement short.

const BATCH = 5000

export interface Pruned {
  events: number
  deliveries: number
  notifications: number
}

async function deleteInBatches(database: Database, statement: string, params: unknown[]): Promise<number> {
  let total = 0
  for (;;) {
    const rows = await database.query(statement, [...params, BATCH])
    total += rows.length
    if (rows.length < BATCH) return total
  }
}

export async function pruneTold(database: Database, retentionDays: number): Promise<Pruned> {
  const cutoff = new Date(Date.now() - retentionDays * 86_400_000).toISOString()
  // A delivery made for a target deleted while its event was being fanned out has nobody to go to.
  await database.query(
    `update notify_deliveries d set state = 'cancelled', last_error = 'the target was deleted'
      where state = 'pending' and created_at < now() - interval '1 hour'
        and not exists (select 1 from notify_targets t where t.id = d.target_id)`,
    [],
  )
  const deliveries = await deleteInBatches(
    database,
    // The conditions again outside: a row revived (retried) while the statement ran is kept.
    `delete from notify_deliveries where id in (
       select id from notify_deliveries where created_at < $1 and state <> 'pending' limit $2)
       and created_at < $1 and state <> 'pending'
     returning 1`,
    [cutoff],
  )
  const events = await deleteInBatches(
    database,
    `delete from outbox_events where seq in (
       select o.seq from outbox_events o
        where o.created_at < $1 and o.position is not null
          and not exists (select 1 from notify_deliveries d where d.event_seq = o.seq and d.state = 'pending')
        limit $2)
       and not exists (select 1 from notify_deliveries d where d.event_seq = outbox_events.seq and d.state = 'pending')
     returning 1`,
    [cutoff],
  )
  const notifications = await deleteInBatches(
    database,
    `delete from notifications where id in (select id from notifications where created_at < $1 limit $2)
     returning 1`,
    [cutoff],
  )
  await database.query(`delete from notify_verification_sends where sent_at < now() - interval '2 days'`, [])
  return { events, deliveries, notifications }
}
