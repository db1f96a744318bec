import { and, asc, desc, eq, gt, gte, like, lt, type SQL, sql } from 'drizzle-orm'
import { type Db, queryRows, type Tx } from '../db/client.ts'
import { auditEntries, auditHeads } from '../db/schema/index.ts'
import type { Actor, ChangeSource } from '../domain/actor.ts'
import { withoutLoneSurrogates } from '../domain/text.ts'
import { type ChainedEntry, entryHash, GENESIS_HASH } from './chain-hash.ts'

// Writing and reading the audit log. An entry is appended inside the transaction of the change it
// records, as that transaction's last statements: the owner's head row is locked last, so a
// transaction never waits for a head while holding it and then for something else (no deadlock),
// and the chain follows commit order.

export interface AuditRecord {
  ownerId: string
  source: ChangeSource
  /** `deployment.create`, `org.member_remove`, `billing.charge`… */
  action: string
  /** What it acted on: `deployment:<id>`, `member:<address>`, `api_key:<id>`… */
  target: string
  outcome?: 'ok' | 'denied'
  /** A few facts about the change; never a secret. */
  detail?: Record<string, unknown>
}

export interface AuditEntry extends ChainedEntry {
  id: string
  hash: string
}

interface HeadRow {
  owner_id: string
  seq: string | number
  hash: string
}

/**
 * What the database and canonical JSON can hold, for text that came from outside (a path, a
 * name, an operator's reason): a lone surrogate becomes U+FFFD and a NUL is dropped, neither of
 * which PostgreSQL stores or RFC 8785 hashes.
 */
function storable<T>(value: T): T {
  if (typeof value === 'string') {
    return withoutLoneSurrogates(value).replaceAll('\u0000', '') as T
  }
  if (Array.isArray(value)) return value.map(storable) as T
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [storable(k), storable(v)])) as T
  }
  return value
}

/** Appends the records, chained per owner, in the caller's transaction. */
export async function appendAudit(tx: Tx, records: AuditRecord[], at = new Date()): Promise<void> {
  if (records.length === 0) return
  // Heads are locked in one order (sorted), so two transactions touching the same owners queue.
  const owners = [...new Set(records.map((r) => r.ownerId))].sort()
  const heads = await queryRows<HeadRow>(
    tx,
    sql`insert into audit_heads (owner_id, seq, hash)
            select o.value::uuid, 0, ${GENESIS_HASH}
              from jsonb_array_elements_text(${JSON.stringify(owners)}::jsonb) with ordinality as o(value, ord)
             order by o.ord
            on conflict (owner_id) do update set owner_id = excluded.owner_id
            returning owner_id, seq, hash`,
  )
  const tip = new Map(heads.map((h) => [h.owner_id, { seq: Number(h.seq), hash: h.hash }]))
  const rows = records.map(storable).map((record) => {
    const previous = tip.get(record.ownerId)!
    const entry: ChainedEntry = {
      owner: record.ownerId,
      seq: previous.seq + 1,
      at: at.toISOString(),
      actor: record.source.actor,
      action: record.action,
      target: record.target,
      ip: record.source.ip ?? null,
      requestId: record.source.requestId ?? null,
      outcome: record.outcome ?? 'ok',
      detail: record.detail ?? null,
      prevHash: previous.hash,
    }
    const hash = entryHash(entry)
    tip.set(record.ownerId, { seq: entry.seq, hash })
    return { ...entry, actor_type: entry.actor.type, actor_id: entry.actor.id, hash }
  })
  const newHeads = [...tip].map(([owner, head]) => ({ owner, ...head }))
  await queryRows(
    tx,
    sql`with e as (
              insert into audit_entries
                (owner_id, seq, at, actor_type, actor_id, action, target, ip, request_id, outcome, detail, prev_hash, hash)
              select x.owner, x.seq, x.at, x.actor_type, x.actor_id, x.action, x.target, x.ip, x."requestId",
                     x.outcome, x.detail, x."prevHash", x.hash
                from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as x(
                  owner uuid, seq bigint, at timestamptz, actor_type text, actor_id text, action text, target text,
                  ip text, "requestId" text, outcome text, detail jsonb, "prevHash" text, hash text))
            update audit_heads h set seq = x.seq, hash = x.hash
              from jsonb_to_recordset(${JSON.stringify(newHeads)}::jsonb) as x(owner uuid, seq bigint, hash text)
             where h.owner_id = x.owner`,
  )
}

export interface AuditFilter {
  /** One owner's entries; absent only for the operator. */
  ownerId?: string
  from?: Date
  to?: Date
  /** An action, or a prefix ending in `*` (`deployment.*`). */
  action?: string
  /** `type:id`, as events show it. */
  actor?: Actor
  target?: string
  /** Entries past this id in the listing's order (the previous page's cursor). */
  after?: bigint
  /** Oldest first (the default), or newest first. */
  newestFirst?: boolean
  limit: number
}

/** Entries in the order asked, and the cursor of the next page when there may be more. */
export async function listAudit(
  db: Db,
  filter: AuditFilter,
): Promise<{ items: AuditEntry[]; nextCursor: string | null }> {
  const where: SQL[] = []
  if (filter.ownerId) where.push(eq(auditEntries.ownerId, filter.ownerId))
  if (filter.from) where.push(gte(auditEntries.at, filter.from))
  if (filter.to) where.push(lt(auditEntries.at, filter.to))
  if (filter.action?.endsWith('*')) {
    const prefix = filter.action.slice(0, -1).replace(/[\\%_]/g, (c) => `\\${c}`)
    where.push(like(auditEntries.action, `${prefix}%`))
  } else if (filter.action) {
    where.push(eq(auditEntries.action, filter.action))
  }
  if (filter.actor) {
    where.push(eq(auditEntries.actorType, filter.actor.type), eq(auditEntries.actorId, filter.actor.id))
  }
  if (filter.target) where.push(eq(auditEntries.target, filter.target))
  if (filter.after !== undefined) {
    where.push(filter.newestFirst ? lt(auditEntries.id, filter.after) : gt(auditEntries.id, filter.after))
  }
  const rows = await db
    .select()
    .from(auditEntries)
    .where(and(...where))
    .orderBy(filter.newestFirst ? desc(auditEntries.id) : asc(auditEntries.id))
    .limit(filter.limit + 1)
  const items = rows.slice(0, filter.limit).map(entryOf)
  return { items, nextCursor: rows.length > filter.limit ? items.at(-1)!.id : null }
}

/** An owner's head: its last entry's number and hash (absent before its first entry). */
export async function auditHead(db: Db, ownerId: string): Promise<{ seq: number; hash: string } | null> {
  const [head] = await db.select().from(auditHeads).where(eq(auditHeads.ownerId, ownerId))
  return head ? { seq: head.seq, hash: head.hash } : null
}

function entryOf(row: typeof auditEntries.$inferSelect): AuditEntry {
  return {
    id: row.id.toString(),
    owner: row.ownerId,
    seq: row.seq,
    at: row.at.toISOString(),
    actor: { type: row.actorType, id: row.actorId },
    action: row.action,
    target: row.target,
    ip: row.ip,
    requestId: row.requestId,
    outcome: row.outcome,
    detail: row.detail,
    prevHash: row.prevHash,
    hash: row.hash,
  }
}
