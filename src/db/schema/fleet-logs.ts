import { bigserial, boolean, index, integer, pgTable, text, uuid } from 'drizzle-orm/pg-core'
import { at } from './columns.ts'
import { fleetNodes } from './fleet.ts'

// Logs of fleet deployments are read from the nodes on request: a request per node, which the
// node's assignment stream hands to its agent, and the lines the agent posts back, kept until the
// reader is done (any control plane replica may receive them: the database relays them).

export const fleetLogRequests = pgTable(
  'fleet_log_requests',
  {
    id: uuid('id').primaryKey(),
    nodeId: uuid('node_id')
      .notNull()
      .references(() => fleetNodes.id, { onDelete: 'cascade' }),
    deploymentId: uuid('deployment_id').notNull(),
    tail: integer('tail').notNull(),
    follow: boolean('follow').notNull(),
    /** Handed to the node's stream (once, by whichever replica holds it). */
    sent: boolean('sent').notNull().default(false),
    /** When it was handed out: one no batch answered within a while is handed out again. */
    handedAt: at('handed_at'),
    /** The agent said it has sent everything (a request that does not follow). */
    done: boolean('done').notNull().default(false),
    /** The last batch number the agent posted: a batch not above it is a replay. */
    lastBatch: integer('last_batch').notNull().default(0),
    /** The reader keeps moving this on while it reads; past it the request is dropped. */
    expiresAt: at('expires_at').notNull(),
  },
  (t) => [index('fleet_log_requests_node_idx').on(t.nodeId)],
)

export const fleetLogLines = pgTable(
  'fleet_log_lines',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    requestId: uuid('request_id')
      .notNull()
      .references(() => fleetLogRequests.id, { onDelete: 'cascade' }),
    at: at('at').notNull(),
    stream: text('stream').notNull(),
    text: text('text').notNull(),
  },
  (t) => [index('fleet_log_lines_request_idx').on(t.requestId, t.id)],
)
