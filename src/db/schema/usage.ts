import { bigint, doublePrecision, pgTable, primaryKey, uuid } from 'drizzle-orm/pg-core'
import { at } from './columns.ts'

/**
 * What a running deployment used, sampled periodically (control/usage-sampler.ts), kept for
 * billing. Network counters are totals since the container started, as the engine reports them;
 * billing takes differences. No foreign key: samples of a deployment outlive its row's changes,
 * and the table stays independent of the deployments schema.
 */
export const usageSamples = pgTable(
  'usage_samples',
  {
    deploymentId: uuid('deployment_id').notNull(),
    at: at('at').notNull().defaultNow(),
    cpuPercent: doublePrecision('cpu_percent').notNull(),
    memoryBytes: bigint('memory_bytes', { mode: 'number' }).notNull(),
    rxBytes: bigint('rx_bytes', { mode: 'number' }).notNull(),
    txBytes: bigint('tx_bytes', { mode: 'number' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.deploymentId, t.at] })],
)
