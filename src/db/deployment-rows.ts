import { getTableColumns } from 'drizzle-orm'
import { deployments } from './schema/index.ts'

// The deployment row as every layer sees it, and the conversion of the rows that plain-SQL
// statements return. It imports nothing of berth above the schema, so the store, the reconciler's
// fenced writes, the event log and the use cases can all share it without importing each other.

export type DeploymentRow = typeof deployments.$inferSelect

/** The columns a reconcile step may change; everything else belongs to the store or the lease. */
export type DeploymentPatch = Partial<
  Pick<
    DeploymentRow,
    | 'status'
    | 'desiredState'
    | 'stage'
    | 'percent'
    | 'stopReason'
    | 'error'
    | 'endpoints'
    | 'restartGeneration'
    | 'appliedRestartGeneration'
    | 'healthyStreak'
    | 'unhealthyStreak'
    | 'restartCount'
    | 'restartWindowStartedAt'
    | 'attempts'
    | 'retryingSince'
    | 'handover'
    | 'waitReason'
    | 'queuedAt'
    | 'holdsCapacity'
    | 'startingSince'
    | 'deployStartedAt'
    | 'runningSince'
  >
>

/** The reconciler's proof that it still holds a deployment's lease (fencing). */
export interface Fence {
  owner: string
  token: number
}

// Plain-SQL statements on deployments return snake_case columns in driver form. `columnsOf`
// aliases them to the row's camelCase keys, and `fromDriver` converts the values the way drizzle's
// own selects do (dates, bigint as number, jsonb).
const columnEntries = Object.entries(getTableColumns(deployments))
export const columnByKey = new Map(columnEntries)
export const columnsOf = (alias: string) =>
  columnEntries.map(([key, column]) => `${alias}.${column.name} as "${key}"`).join(', ')
export function fromDriver(raw: Record<string, unknown>): DeploymentRow {
  const row: Record<string, unknown> = {}
  for (const [key, column] of columnEntries) {
    const value = raw[key]
    row[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value)
  }
  return row as DeploymentRow
}
