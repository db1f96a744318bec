import { integer, pgTable, primaryKey, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import { at } from './columns.ts'
import { deployments } from './deployments.ts'

/**
 * Host ports published for deployments. The primary key makes one host port one
 * owner's, even when several control planes allocate at once; the unique index makes one
 * container port of one replica get one host port.
 *
 * A row with no deployment is a port the engine refused to bind because something outside berth
 * holds it: it is kept out of the range for a while (see control/ports/port-allocator.ts).
 */
export const portAllocations = pgTable(
  'port_allocations',
  {
    hostIp: text('host_ip').notNull(),
    hostPort: integer('host_port').notNull(),
    protocol: text('protocol').notNull(),
    deploymentId: uuid('deployment_id').references(() => deployments.id, { onDelete: 'cascade' }),
    replica: integer('replica'),
    containerPort: integer('container_port'),
    createdAt: at('created_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.hostIp, t.hostPort, t.protocol] }),
    uniqueIndex('port_allocations_deployment_key').on(t.deploymentId, t.replica, t.containerPort, t.protocol),
  ],
)
