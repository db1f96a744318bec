import { sql } from 'drizzle-orm'
import {
  bigint,
  bigserial,
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
  type NodeResources,
  nodeConnectivities,
  nodeSchedulingStates,
  type ReportedInstance,
  type ReportedUsage,
} from '../../domain/node.ts'
import { accounts } from './accounts.ts'
import { at, oneOf } from './columns.ts'

/**
 * A machine in the community fleet, enrolled by its operator's wallet. Its identity is the agent's
 * Ed25519 public key: the agent signs every heartbeat with the private half, kept in its data dir,
 * so enrolling the same data dir again finds the same node.
 */
export const fleetNodes = pgTable(
  'fleet_nodes',
  {
    id: uuid('id').primaryKey(),
    /** The node operator: the personal account of the wallet that enrolled it. */
    operatorId: uuid('operator_id')
      .notNull()
      .references(() => accounts.id),
    name: text('name').notNull(),
    /** The agent's raw 32-byte Ed25519 public key, base64url. */
    publicKey: text('public_key').notNull(),
    labels: jsonb('labels').$type<Record<string, string>>().notNull().default({}),
    capacity: jsonb('capacity').$type<NodeResources>(),
    allocatable: jsonb('allocatable').$type<NodeResources>(),
    agentVersion: text('agent_version'),
    instances: jsonb('instances').$type<ReportedInstance[]>().notNull().default([]),
    /** What each deployment's replicas on the node use, as its agent last sampled it. */
    usage: jsonb('usage').$type<ReportedUsage[]>().notNull().default([]),
    /** The last heartbeat's sequence number: the next must be higher (replays and reorders are refused). */
    lastSeq: bigint('last_seq', { mode: 'number' }).notNull().default(0),
    /** When the last heartbeat was received (the server's clock); the enrollment's time before any. */
    lastSeenAt: at('last_seen_at').notNull(),
    /** The node's first heartbeat: its uptime windows start no earlier (a new node is not penalised). */
    firstHeartbeatAt: at('first_heartbeat_at'),
    /** Where the open uptime session began (a row of node_uptime_sessions); null before a heartbeat. */
    sessionStartedAt: at('session_started_at'),
    connectivity: text('connectivity', { enum: nodeConnectivities }).notNull().default('online'),
    scheduling: text('scheduling', { enum: nodeSchedulingStates }).notNull().default('active'),
    /** How often the node was lost within the last day, and when last: the reschedule delay grows with it. */
    lossCount: integer('loss_count').notNull().default(0),
    lostAt: at('lost_at'),
    enrolledAt: at('enrolled_at').notNull(),
    /** Removed by the operator: its heartbeats are refused until its agent enrolls again. */
    removedAt: at('removed_at'),
  },
  (t) => [
    uniqueIndex('fleet_nodes_public_key_key').on(t.publicKey),
    index('fleet_nodes_operator_idx').on(t.operatorId),
    // The loss sweep reads the online nodes that are still in the fleet.
    index('fleet_nodes_online_idx')
      .on(t.lastSeenAt)
      .where(sql`${t.connectivity} = 'online' and ${t.removedAt} is null`),
    oneOf('fleet_nodes_connectivity_check', t.connectivity, nodeConnectivities),
    oneOf('fleet_nodes_scheduling_check', t.scheduling, nodeSchedulingStates),
  ],
)

/** A span in which a node was heard from without a gap longer than fleet.sessionGapSeconds. */
export const nodeUptimeSessions = pgTable(
  'node_uptime_sessions',
  {
    nodeId: uuid('node_id')
      .notNull()
      .references(() => fleetNodes.id),
    startedAt: at('started_at').notNull(),
    lastSeenAt: at('last_seen_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.nodeId, t.startedAt] })],
)

/** A join token the operator hands out for a closed fleet: kept as its SHA-256, shown once. */
export const fleetJoinTokens = pgTable('fleet_join_tokens', {
  id: uuid('id').primaryKey(),
  tokenHash: text('token_hash').notNull().unique(),
  note: text('note'),
  /** Enrollments it still admits; null: any number until it expires. */
  usesLeft: integer('uses_left'),
  createdAt: at('created_at').notNull(),
  expiresAt: at('expires_at').notNull(),
  revokedAt: at('revoked_at'),
})

/**
 * Where each replica of a fleet deployment runs, and what it holds there. The sum over a node is
 * what is reserved on it: a placement is written in the same transaction that checked the node
 * still had room, with the node's row locked, so concurrent placements never overbook a node.
 */
export const fleetPlacements = pgTable(
  'fleet_placements',
  {
    deploymentId: uuid('deployment_id').notNull(),
    replica: integer('replica').notNull(),
    nodeId: uuid('node_id')
      .notNull()
      .references(() => fleetNodes.id),
    ownerId: uuid('owner_id').notNull(),
    milliCpus: bigint('milli_cpus', { mode: 'number' }).notNull(),
    memoryMb: bigint('memory_mb', { mode: 'number' }).notNull(),
    diskMb: bigint('disk_mb', { mode: 'number' }).notNull(),
    gpus: integer('gpus').notNull().default(0),
    gpuModel: text('gpu_model'),
    placedAt: at('placed_at').notNull(),
    /** Why this node: the scheduler's reason, as the `scheduled` event tells it. */
    reason: text('reason').notNull(),
    /**
     * Which run of the replica the node is to have: an instance created for an older generation
     * is replaced. Raised by a restart, and by an apply for a newer restart generation.
     */
    generation: integer('generation').notNull().default(0),
    /**
     * The deployment is stopped: the node keeps the replica's instance (stopped) and its volumes,
     * and its room, for a later start there.
     */
    stopped: boolean('stopped').notNull().default(false),
  },
  (t) => [
    primaryKey({ columns: [t.deploymentId, t.replica] }),
    index('fleet_placements_node_idx').on(t.nodeId),
  ],
)

/**
 * Which node held which replica when: a span opens with a placement and ends when the replica
 * leaves the node. Earnings go to the node that held a replica through most of a charged interval.
 */
export const fleetPlacementSpans = pgTable(
  'fleet_placement_spans',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    deploymentId: uuid('deployment_id').notNull(),
    replica: integer('replica').notNull(),
    nodeId: uuid('node_id')
      .notNull()
      .references(() => fleetNodes.id),
    startedAt: at('started_at').notNull(),
    endedAt: at('ended_at'),
  },
  (t) => [
    index('fleet_placement_spans_deployment_idx').on(t.deploymentId, t.replica),
    // A replica is on one node at a time: at most one open span each.
    uniqueIndex('fleet_placement_spans_open_key').on(t.deploymentId, t.replica).where(sql`ended_at is null`),
  ],
)
