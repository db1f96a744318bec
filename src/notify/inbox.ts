import { sql } from 'drizzle-orm'
import { type Db, queryRows, type Tx } from '../db/client.ts'
import type { deliveryStates } from '../db/schema/index.ts'
import { conflict, notFound } from '../domain/errors.ts'
import { paymentEventTypes } from '../domain/event-types.ts'
import { allows, type Principal } from '../identity/principal.ts'
import { tellableOf } from './publisher.ts'
import { envelopeOf } from './senders.ts'

// What an owner reads back: its events for pull consumers (paged by publishing position, so a
// cursor never skips one that committed late), its in-app notifications with their read marks,
// and the delivery log of one of its webhooks or channels.

const asIso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString())

/** The event types a caller may not read: those about money, without payments:read. */
export const hiddenEventTypes = (principal: Principal): readonly string[] =>
  allows(principal, 'payments:read') ? [] : paymentEventTypes

/** Leaves out rows of these event types (the `type` column: the in-app list's, or the outbox's). */
const hiding = (types: readonly string[] | undefined) =>
  types?.length ? sql`and type <> all(${sql.param([...types])}::text[])` : sql``

export function createInbox(db: Db) {
  return {
    /** `hidden`: event types the reader may not see (payments, for one who may not read them). */
    async events(
      ownerId: string,
      query: { types?: string[]; cursor?: number; limit: number; hidden?: readonly string[] },
    ) {
      const rows = await queryRows<Parameters<typeof tellableOf>[0] & { position: string }>(
        db,
        sql`select seq, id, owner_id, type, deployment_id, payload, only_target_id, created_at, position
              from outbox_events
             where owner_id = ${ownerId} and position > ${query.cursor ?? 0} and only_target_id is null
               ${query.types?.length ? sql`and type = any(${sql.param(query.types)}::text[])` : sql``}
               ${hiding(query.hidden)}
             order by position limit ${query.limit}`,
      )
      const items = rows.map((r) => ({ ...envelopeOf(tellableOf(r)), position: Number(r.position) }))
      // The cursor moves past what was read; with nothing new, it stays where the reader was.
      return { items, cursor: items.at(-1)?.position ?? query.cursor ?? 0 }
    },

    async notifications(
      ownerId: string,
      query: { unread?: boolean; before?: number; limit: number; hidden?: readonly string[] },
    ) {
      const rows = await queryRows<{
        id: string
        type: string
        message: string
        deployment_id: string | null
        data: unknown
        event_id: string | null
        read_at: Date | string | null
        created_at: Date | string
      }>(
        db,
        sql`select id, type, message, deployment_id, data, event_id, read_at, created_at from notifications
             where account_id = ${ownerId}
               ${query.unread ? sql`and read_at is null` : sql``}
               ${query.before ? sql`and id < ${query.before}` : sql``}
               ${hiding(query.hidden)}
             order by id desc limit ${query.limit}`,
      )
      const [{ unread } = { unread: 0 }] = await queryRows<{ unread: number }>(
        db,
        sql`select count(*)::int as unread from notifications
             where account_id = ${ownerId} and read_at is null ${hiding(query.hidden)}`,
      )
      return {
        items: rows.map((r) => ({
          id: String(r.id),
          type: r.type,
          message: r.message,
          deploymentId: r.deployment_id,
          eventId: r.event_id,
          data: r.data ?? undefined,
          read: r.read_at !== null,
          createdAt: asIso(r.created_at)!,
        })),
        unread,
      }
    },

    /** Marks the given notifications read (all of the owner's when `ids` is absent); returns how many. */
    async markRead(ownerId: string, ids: string[] | undefined, hidden?: readonly string[]): Promise<number> {
      const rows = await queryRows<{ id: string }>(
        db,
        sql`update notifications set read_at = now()
             where account_id = ${ownerId} and read_at is null
               ${ids ? sql`and id = any(${sql.param(ids)}::bigint[])` : sql``}
               ${hiding(hidden)}
            returning id`,
      )
      return rows.length
    },

    async deliveries(
      targetId: string,
      query: { before?: string; limit: number; hidden?: readonly string[] },
    ) {
      const rows = await queryRows<{
        id: string
        event_id: string
        type: string
        state: (typeof deliveryStates)[number]
        attempts: number
        next_attempt_at: Date | string | null
        last_status: number | null
        last_latency_ms: number | null
        last_error: string | null
        last_attempt_at: Date | string | null
        created_at: Date | string
      }>(
        db,
        sql`select d.id, o.id as event_id, o.type, d.state, d.attempts, d.next_attempt_at, d.last_status,
                   d.last_latency_ms, d.last_error, d.last_attempt_at, d.created_at
              from notify_deliveries d join outbox_events o on o.seq = d.event_seq
             where d.target_id = ${targetId} ${hiding(query.hidden)}
               ${query.before ? sql`and (d.created_at, d.id) < (select created_at, id from notify_deliveries where id = ${query.before})` : sql``}
             order by d.created_at desc, d.id desc limit ${query.limit}`,
      )
      return rows.map((r) => ({
        id: r.id,
        eventId: r.event_id,
        eventType: r.type,
        state: r.state,
        attempts: r.attempts,
        statusCode: r.last_status,
        latencyMs: r.last_latency_ms,
        error: r.last_error,
        lastAttemptAt: asIso(r.last_attempt_at),
        nextAttemptAt: r.state === 'pending' ? asIso(r.next_attempt_at) : null,
        createdAt: asIso(r.created_at)!,
      }))
    },

    /** Tries a delivery again now; one that failed or was cancelled gets a fresh schedule. */
    async retry(targetId: string, deliveryId: string, q: Db | Tx = db): Promise<void> {
      const [row] = await queryRows<{ state: string }>(
        q,
        sql`select state from notify_deliveries where id = ${deliveryId} and target_id = ${targetId}`,
      )
      if (!row) throw notFound(`delivery ${deliveryId}`)
      if (row.state === 'succeeded') throw conflict('the delivery succeeded already')
      await q.execute(
        sql`update notify_deliveries
               set state = 'pending', next_attempt_at = now(),
                   attempts = case when state = 'pending' then attempts else 0 end
             where id = ${deliveryId} and state <> 'succeeded'`,
      )
    },
  }
}

export type Inbox = ReturnType<typeof createInbox>
