import { sql } from 'drizzle-orm'
import {
  bigint,
  bigserial,
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core'
import { at, oneOf } from './columns.ts'

// The outbox of events worth telling, the places they are told (webhooks, chat and email
// channels, the operator's own), and one delivery row per event and place.

/**
 * Every event worth telling, written in the transaction of the change that caused it. `seq` is
 * the order of writing; `position` the order of publishing, given by the one publisher at a time
 * when it fans the event out: a pull consumer pages by `position`, which (unlike `seq`, whose
 * values commit out of order) never shows a later event before an earlier one it would miss.
 */
export const outboxEvents = pgTable(
  'outbox_events',
  {
    seq: bigserial('seq', { mode: 'number' }).primaryKey(),
    /** `evt_…`: the event's id, and the `webhook-id` of every delivery of it. */
    id: text('id').notNull().default(sql`'evt_' || replace(gen_random_uuid()::text, '-', '')`),
    ownerId: uuid('owner_id'),
    type: text('type').notNull(),
    deploymentId: uuid('deployment_id'),
    payload: jsonb('payload').notNull(),
    onlyTargetId: uuid('only_target_id'),
    position: bigint('position', { mode: 'number' }),
    createdAt: at('created_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('outbox_events_id').on(t.id),
    index('outbox_events_unpublished').on(t.seq).where(sql`${t.position} is null`),
    index('outbox_events_owner_position').on(t.ownerId, t.position),
    // Retention deletes by age; test events are counted per target to limit how often they are asked.
    index('outbox_events_created').on(t.createdAt),
    index('outbox_events_only_target')
      .on(t.onlyTargetId, t.createdAt)
      .where(sql`${t.onlyTargetId} is not null`),
  ],
)

/** The last position given, in its one row: the publisher counts from it. */
export const outboxHead = pgTable('outbox_head', {
  id: integer('id').primaryKey(),
  position: bigint('position', { mode: 'number' }).notNull(),
})

export const targetKinds = ['webhook', 'email', 'slack', 'discord', 'telegram'] as const
export type TargetKind = (typeof targetKinds)[number]

/**
 * A place events are told: an owner's webhook or channel, or (owner null) one of the operator's
 * from `notifications.operator`. What lets berth reach it (a signing secret, a chat URL with its
 * token, a bot token) is sealed in `sealed`; `shown` is what may be listed.
 */
export const notifyTargets = pgTable(
  'notify_targets',
  {
    id: uuid('id').primaryKey(),
    ownerId: uuid('owner_id'),
    kind: text('kind', { enum: targetKinds }).notNull(),
    description: text('description').notNull().default(''),
    /** Event types told here; empty: all of them. */
    eventTypes: jsonb('event_types').$type<string[]>().notNull().default([]),
    enabled: boolean('enabled').notNull().default(true),
    /** Why berth turned it off: `gone` (a 410), `failing` (failed the whole retry schedule). */
    disabledReason: text('disabled_reason'),
    shown: text('shown').notNull(),
    sealed: text('sealed').notNull(),
    /** The previous signing secret stays valid until then (a rotation). */
    previousSecretUntil: at('previous_secret_until'),
    /** Email channels tell nothing until the address proved it is its owner's. */
    verifiedAt: at('verified_at'),
    verifyCodeHash: text('verify_code_hash'),
    verifyAttempts: integer('verify_attempts').notNull().default(0),
    /** `notifications.operator` entry this row mirrors (its index and content digest). */
    configKey: text('config_key'),
    createdAt: at('created_at').notNull().defaultNow(),
    updatedAt: at('updated_at').notNull().defaultNow(),
  },
  (t) => [
    oneOf('notify_targets_kind_check', t.kind, targetKinds),
    index('notify_targets_owner').on(t.ownerId, t.createdAt),
  ],
)

export const deliveryStates = ['pending', 'succeeded', 'failed', 'cancelled'] as const

/** One event told at one target: retried on its schedule until it succeeds or gives up. */
export const notifyDeliveries = pgTable(
  'notify_deliveries',
  {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    eventSeq: bigint('event_seq', { mode: 'number' }).notNull(),
    targetId: uuid('target_id').notNull(),
    state: text('state', { enum: deliveryStates }).notNull().default('pending'),
    /** Attempts made so far. */
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: at('next_attempt_at'),
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: at('lease_expires_at'),
    lastStatus: integer('last_status'),
    lastLatencyMs: integer('last_latency_ms'),
    lastError: text('last_error'),
    lastAttemptAt: at('last_attempt_at'),
    createdAt: at('created_at').notNull().defaultNow(),
  },
  (t) => [
    oneOf('notify_deliveries_state_check', t.state, deliveryStates),
    uniqueIndex('notify_deliveries_event_target').on(t.eventSeq, t.targetId),
    index('notify_deliveries_due').on(t.nextAttemptAt).where(sql`${t.state} = 'pending'`),
    index('notify_deliveries_target').on(t.targetId, t.createdAt),
    // The claim looks at each target's own due rows, so one target's backlog never hides another's.
    index('notify_deliveries_target_due').on(t.targetId, t.nextAttemptAt).where(sql`${t.state} = 'pending'`),
    // Counting a target's live claims reads only the claimed rows, not its whole backlog.
    index('notify_deliveries_leased')
      .on(t.targetId)
      .where(sql`${t.state} = 'pending' and ${t.leaseOwner} is not null`),
    index('notify_deliveries_created').on(t.createdAt),
  ],
)

/**
 * Verification emails sent, kept (by the address's digest, not the address) to limit how many
 * one owner may have sent and how many one address receives: creating email channels must not
 * become a way to send mail to strangers.
 */
export const notifyVerificationSends = pgTable(
  'notify_verification_sends',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    ownerId: uuid('owner_id').notNull(),
    addressDigest: text('address_digest').notNull(),
    sentAt: at('sent_at').notNull().defaultNow(),
  },
  (t) => [
    index('notify_verification_sends_owner').on(t.ownerId, t.sentAt),
    index('notify_verification_sends_address').on(t.addressDigest, t.sentAt),
  ],
)
