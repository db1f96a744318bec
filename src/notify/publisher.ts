import { sql } from 'drizzle-orm'
import { type Database, queryRows } from '../db/client.ts'
import type { EventType } from '../domain/event-types.ts'
import { messageOf, type TellableEvent } from './messages.ts'

// The publisher: takes committed outbox events in the order they were written, gives each its
// position (the order pull consumers page in), and in the same transaction writes one delivery
// per webhook or channel that wants it and the owner's in-app notification. One publisher runs at
// a time across replicas (a transaction-scoped advisory lock; the others skip their turn), which
// is what makes positions commit in order. A crash before the commit leaves the events unpublished
// for the next turn: none is lost, none published twice.

const PUBLISHER_LOCK = sql`hashtextextended('berth/outbox-publisher', 0)`

interface OutboxRow {
  seq: string | number
  id: string
  owner_id: string | null
  type: string
  deployment_id: string | null
  payload: Record<string, unknown>
  only_target_id: string | null
  created_at: Date | string
}

export const tellableOf = (row: OutboxRow): TellableEvent => ({
  id: row.id,
  type: row.type as EventType,
  deploymentId: row.deployment_id,
  payload: row.payload,
  createdAt: new Date(row.created_at),
})

/** Publishes up to `batch` events; returns how many (0: nothing waiting, or another replica's turn). */
export async function publishBatch(database: Database, publicUrl: URL, batch: number): Promise<number> {
  return database.db.transaction(async (tx) => {
    const [lock] = await queryRows<{ got: boolean }>(
      tx,
      sql`select pg_try_advisory_xact_lock(${PUBLISHER_LOCK}) as got`,
    )
    if (!lock?.got) return 0
    const rows = await queryRows<OutboxRow>(
      tx,
      sql`select seq, id, owner_id, type, deployment_id, payload, only_target_id, created_at
            from outbox_events where position is null order by seq limit ${batch}`,
    )
    if (rows.length === 0) return 0
    const seqs = rows.map((r) => String(r.seq))
    const [head] = await queryRows<{ position: string }>(
      tx,
      sql`update outbox_head set position = position + ${rows.length} where id = 1 returning position`,
    )
    const first = Number(head!.position) - rows.length
    await tx.execute(sql`
      update outbox_events o set position = ${first} + n.ord
        from unnest(${sql.param(seqs)}::bigint[]) with ordinality as n(seq, ord)
       where o.seq = n.seq`)
    // One delivery per target that wants the event: its owner's (or the operator's, for the
    // operator's events), enabled, subscribed to the type (none listed: all), an email address
    // only once verified. A test event goes to the one target it names, enabled or not.
    await tx.execute(sql`
      insert into notify_deliveries (event_seq, target_id, next_attempt_at)
      select o.seq, t.id, now()
        from outbox_events o
        join notify_targets t on t.owner_id is not distinct from o.owner_id
       where o.seq = any(${sql.param(seqs)}::bigint[])
         and (o.only_target_id is null or o.only_target_id = t.id)
         and (t.enabled or o.only_target_id = t.id)
         and (o.only_target_id is not null or jsonb_array_length(t.event_types) = 0 or t.event_types ? o.type)
         and (t.kind <> 'email' or t.verified_at is not null)
      on conflict (event_seq, target_id) do nothing`)
    const inApp = rows.filter((r) => r.owner_id !== null && r.only_target_id === null)
    if (inApp.length > 0) {
      const items = inApp.map((r) => {
        const event = tellableOf(r)
        return {
          account_id: r.owner_id,
          type: r.type,
          message: messageOf(event, publicUrl).title,
          deployment_id: r.deployment_id,
          data: r.payload,
          event_id: r.id,
          created_at: event.createdAt.toISOString(),
        }
      })
      await tx.execute(sql`
        insert into notifications (account_id, type, message, deployment_id, data, event_id, created_at)
        select x.account_id, x.type, x.message, x.deployment_id, x.data, x.event_id, x.created_at
          from jsonb_to_recordset(${JSON.stringify(items)}::jsonb)
            as x(account_id uuid, type text, message text, deployment_id uuid, data jsonb, event_id text, created_at timestamptz)
        on conflict (account_id, event_id) do nothing`)
    }
    return rows.length
  })
}
