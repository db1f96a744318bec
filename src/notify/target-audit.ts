import { appendAudit } from '../audit/audit-log.ts'
import type { Db, Tx } from '../db/client.ts'
import { actingAccount, type Principal, sourceOf } from '../identity/principal.ts'

/** A change to one target and its audit entry, in one transaction. */
export async function changeTargetAudited<T>(
  db: Db,
  principal: Principal,
  action: string,
  targetId: string,
  detail: Record<string, unknown>,
  change: (tx: Tx) => Promise<T>,
): Promise<T> {
  return db.transaction(async (tx) => {
    const result = await change(tx)
    await appendAudit(tx, [
      {
        ownerId: actingAccount(principal).id,
        source: sourceOf(principal),
        action,
        target: `notify-target:${targetId}`,
        detail,
      },
    ])
    return result
  })
}
