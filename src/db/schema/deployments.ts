import { sql } from 'drizzle-orm'
import {
  bigint,
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core'
import {
  desiredStates,
  handoverKinds,
  progressStages,
  type StopReason,
  statuses,
  stopReasons,
  waitReasons,
} from '../../domain/lifecycle.ts'
import type { DeploymentSpec } from '../../domain/spec.ts'
import { accounts } from './accounts.ts'
import { at, oneOf } from './columns.ts'

export interface Endpoint {
  containerPort: number
  protocol: 'tcp' | 'udp'
  url: string
  /** The service it belongs to, on a multi-service deployment. */
  service?: string
}

export const deployments = pgTable(
  'deployments',
  {
    id: uuid('id').primaryKey(),
    ownerId: uuid('owner_id')
      .notNull()
      .references(() => accounts.id),
    name: text('name').notNull(),
    spec: jsonb('spec').$type<DeploymentSpec>().notNull(),
    provider: text('provider').notNull(),
    status: text('status', { enum: statuses }).notNull(),
    desiredState: text('desired_state', { enum: desiredStates }).notNull(),
    stage: text('stage', { enum: progressStages }).notNull(),
    percent: integer('percent').notNull(),
    stopReason: text('stop_reason').$type<StopReason>(),
    error: text('error'),
    endpoints: jsonb('endpoints').$type<Endpoint[]>().notNull().default([]),
    /** Bumped by a user restart; the reconciler restarts instances older than it. */
    restartGeneration: integer('restart_generation').notNull().default(0),
    appliedRestartGeneration: integer('applied_restart_generation').notNull().default(0),
    /** Last event sequence number; events are numbered 1, 2, 3… with no gaps. */
    eventSeq: integer('event_seq').notNull().default(0),
    /**
     * What the deployment holds against its owner's quotas (quotas/quota-limits.ts demandOf),
     * worked out once when it is created, so that summing an owner's usage reads a few integers
     * per row instead of each spec.
     */
    quotaReplicas: integer('quota_replicas').notNull().default(0),
    quotaHostPorts: integer('quota_host_ports').notNull().default(0),
    quotaMilliCpus: bigint('quota_milli_cpus', { mode: 'number' }).notNull().default(0),
    quotaMemoryMb: bigint('quota_memory_mb', { mode: 'number' }).notNull().default(0),
    quotaDiskMb: bigint('quota_disk_mb', { mode: 'number' }).notNull().default(0),
    quotaVolumes: integer('quota_volumes').notNull().default(0),
    /** Consecutive passed / failed health checks (the stability window and the failure threshold). */
    healthyStreak: integer('healthy_streak').notNull().default(0),
    unhealthyStreak: integer('unhealthy_streak').notNull().default(0),
    /** Restarts within the current restart window, for the restart budget and the backoff ladder. */
    restartCount: integer('restart_count').notNull().default(0),
    restartWindowStartedAt: at('restart_window_started_at'),
    /** Consecutive failed reconcile attempts; drives the retry backoff. */
    attempts: integer('attempts').notNull().default(0),
    /** When the current run of failed attempts began: past reconciler.maxRetrySeconds it fails. */
    retryingSince: at('retrying_since'),
    /** When the deployment last entered `starting`: its unbilled time runs from here. */
    startingSince: at('starting_since'),
    /**
     * Set when the bound NFT changed hands: the previous holder's instances are still to be removed,
     * with their volumes (`fresh`) or keeping them for the new holder (`carry`).
     */
    handover: text('handover', { enum: handoverKinds }),
    /** Events up to this sequence number were written under an earlier holder: not shown now. */
    handoverSeq: integer('handover_seq').notNull().default(0),
    /** Volumes are named by generation; a handover without carried volumes starts a new one. */
    volumeGeneration: integer('volume_generation').notNull().default(0),
    /** Why a start waits in `pending` (its provider has no room yet), and since when (its place). */
    waitReason: text('wait_reason', { enum: waitReasons }),
    queuedAt: at('queued_at'),
    /** Admitted against its provider's capacity, and counted in it until it stops, fails or goes. */
    holdsCapacity: boolean('holds_capacity').notNull().default(false),
    nextReconcileAt: at('next_reconcile_at').notNull().defaultNow(),
    leaseOwner: text('lease_owner'),
    leaseToken: bigint('lease_token', { mode: 'number' }).notNull().default(0),
    leaseExpiresAt: at('lease_expires_at'),
    deployStartedAt: at('deploy_started_at'),
    runningSince: at('running_since'),
    createdAt: at('created_at').notNull().defaultNow(),
    updatedAt: at('updated_at').notNull().defaultNow(),
  },
  (t) => [
    oneOf('deployments_status_check', t.status, statuses),
    oneOf('deployments_desired_state_check', t.desiredState, desiredStates),
    oneOf('deployments_stage_check', t.stage, progressStages),
    oneOf('deployments_stop_reason_check', t.stopReason, stopReasons),
    oneOf('deployments_handover_check', t.handover, handoverKinds),
    oneOf('deployments_wait_reason_check', t.waitReason, waitReasons),
    // Capacity admission sums what the deployments of one provider hold.
    index('deployments_capacity_idx').on(t.provider).where(sql`${t.holdsCapacity}`),
    // A name is unique per owner among deployments that still exist.
    uniqueIndex('deployments_owner_name_key').on(t.ownerId, t.name).where(sql`${t.status} <> 'deleted'`),
    index('deployments_owner_idx').on(t.ownerId, t.createdAt),
    // One deployment per NFT among those not being deleted; also how the NFT watcher finds them.
    uniqueIndex('deployments_nft_key')
      .on(
        sql`((${t.spec}->'nft'->>'chainId'))`,
        sql`((${t.spec}->'nft'->>'contract'))`,
        sql`((${t.spec}->'nft'->>'tokenId'))`,
      )
      .where(sql`${t.desiredState} <> 'deleted' and ${t.spec} ? 'nft'`),
    // The reconciler's claim scans this index; deleted rows never come due again.
    index('deployments_due_idx').on(t.nextReconcileAt).where(sql`${t.status} <> 'deleted'`),
  ],
)

// No foreign key to deployments, on purpose. Every writer inserts a deployment's events in the
// statement or transaction that bumps that row's event_seq (the insert selects from the updated
// row), so an event cannot exist without its deployment, and deployments are never deleted. The
// key's check per event row cost half of the reconciler's hottest statement (the fenced write of
// a deploy: 0.6 ms → 0.3 ms on PostgreSQL under the throughput benchmark).
export const deploymentEvents = pgTable(
  'deployment_events',
  {
    deploymentId: uuid('deployment_id').notNull(),
    seq: integer('seq').notNull(),
    type: text('type').notNull(),
    status: text('status', { enum: statuses }),
    stage: text('stage', { enum: progressStages }),
    percent: integer('percent'),
    message: text('message'),
    data: jsonb('data'),
    /** Which control-plane worker wrote it, and under which lease (fencing) token. */
    actor: text('actor'),
    leaseToken: bigint('lease_token', { mode: 'number' }),
    at: at('at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.deploymentId, t.seq] }),
    oneOf('deployment_events_status_check', t.status, statuses),
    oneOf('deployment_events_stage_check', t.stage, progressStages),
  ],
)

export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    accountId: uuid('account_id')
      .notNull()
      .references(() => accounts.id),
    key: text('key').notNull(),
    requestHash: text('request_hash').notNull(),
    deploymentId: uuid('deployment_id')
      .notNull()
      .references(() => deployments.id),
    createdAt: at('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.accountId, t.key] })],
)
