import { type AuditEntry, listAudit } from '../../src/audit/audit-log.ts'
import type { Database } from '../../src/db/client.ts'

/** An owner's audit entries, oldest first (the tests' owners have far fewer than 1000). */
export async function auditOf(database: Database, ownerId: string): Promise<AuditEntry[]> {
  return (await listAudit(database.db, { ownerId, limit: 1000 })).items
}

/** An owner's entries as `actor action`, e.g. `system:billing billing.charge`. */
export async function auditLines(database: Database, ownerId: string): Promise<string[]> {
  return (await auditOf(database, ownerId)).map((e) => `${e.actor.type}:${e.actor.id} ${e.action}`)
}
