import { getTableColumns } from 'drizzle-orm'
import { deployments } from '../db/schema/index.ts'
import type { DeploymentRow } from './deployment-store.ts'

// Plain-SQL statements on deployments return snake_case columns in driver form; alias them to the row's camelCase keys
// and convert values the way drizzle's own selects do (dates, bigint as number, jsonb).
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
