import { bigint, bigserial, index, jsonb, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import { actorTypes } from '../../domain/actor.ts'
import { at, oneOf } from './columns.ts'

/**
 * The audit log: append-only. Each owner's entries are numbered 1, 2, 3… and each carries the
 * hash of the one before it (audit/chain-hash.ts), so an entry edited or deleted afterwards breaks
 * the chain. No foreign key to accounts: the log outlives whatever it names.
 */
export const auditEntries = pgTable(
  'audit_entries',
  {
    /** Global order, for paging across owners (the operator's view). */
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    ownerId: uuid('owner_id').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    at: at('at').notNull(),
    actorType: text('actor_type', { enum: actorTypes }).notNull(),
    actorId: text('actor_id').notNull(),
    action: text('action').notNull(),
    target: text('target').notNull(),
    ip: text('ip'),
    requestId: text('request_id'),
    outcome: text('outcome', { enum: ['ok', 'denied'] }).notNull(),
    /** What changed, in a few fields (never a secret). */
    detail: jsonb('detail').$type<Record<string, unknown>>(),
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull(),
  },
  (t) => [
    uniqueIndex('audit_entries_owner_seq_key').on(t.ownerId, t.seq),
    // An owner's entries in order, page by page (the listing's cursor is the id).
    index('audit_entries_owner_id_idx').on(t.ownerId, t.id),
    index('audit_entries_owner_at_idx').on(t.ownerId, t.at),
    oneOf('audit_entries_actor_type_check', t.actorType, actorTypes),
    oneOf('audit_entries_outcome_check', t.outcome, ['ok', 'denied']),
  ],
)

/**
 * Each owner's last entry. Appending locks this row, so one owner's entries are chained one at a
 * time, in commit order, while different owners append in parallel.
 */
export const auditHeads = pgTable('audit_heads', {
  ownerId: uuid('owner_id').primaryKey(),
  seq: bigint('seq', { mode: 'number' }).notNull(),
  hash: text('hash').notNull(),
})
