import { eq } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { accounts } from '../db/schema/index.ts'
import { notFound } from '../domain/errors.ts'
import { isUuid, isWalletAddress } from '../domain/ids.ts'
import { type AuditFilter, type AuditRecord, appendAudit, auditHead, listAudit } from './audit-log.ts'

// The audit log as the HTTP layer uses it: reading an owner's entries (or, for the operator,
// everyone's), and recording a refused request, which changes nothing else and so is written on
// its own.

export function createAudit(db: Db) {
  return {
    list: (filter: AuditFilter) => listAudit(db, filter),
    head: (ownerId: string) => auditHead(db, ownerId),

    recordDenied(record: Omit<AuditRecord, 'outcome'>): Promise<void> {
      return db.transaction((tx) => appendAudit(tx, [{ ...record, outcome: 'denied' }]))
    },

    /** The owner the operator names: an account id, a wallet address or an organisation's slug. */
    async ownerIdOf(ref: string): Promise<string> {
      const where = isUuid(ref)
        ? eq(accounts.id, ref)
        : isWalletAddress(ref)
          ? eq(accounts.address, ref.toLowerCase())
          : eq(accounts.slug, ref)
      const [row] = await db.select({ id: accounts.id }).from(accounts).where(where)
      if (!row) throw notFound(`owner ${ref}`)
      return row.id
    },
  }
}

export type Audit = ReturnType<typeof createAudit>
