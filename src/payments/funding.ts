import { sql } from 'drizzle-orm'
import { appendAudit } from '../audit/audit-log.ts'
import type { Config } from '../config/schema.ts'
import type { Funding } from '../control/step.ts'
import type { Database } from '../db/client.ts'
import type { DeploymentRow } from '../db/deployment-rows.ts'
import { systemSource } from '../domain/actor.ts'
import { ensureHeld, lockAccount } from './ledger.ts'
import { intervalMicroUsd } from './pricing.ts'

// The gate before a deployment starts when payments are required: its first billing interval must
// be held for it (a prepaid period already is). Nothing is charged here; charges come later, per
// interval delivered (billing.ts). The first hold is in the owner's audit log; the top-ups after
// each charge are not (the charge's entry stands for both).

export function createFunding(database: Database, config: Pick<Config, 'payments' | 'pricing'>): Funding {
  const retryInMs = Math.min(5000, config.pricing.billingIntervalSeconds * 1000)
  return {
    async admit(row: DeploymentRow) {
      const need = intervalMicroUsd(row.spec, config.pricing)
      return database.db.transaction(async (tx) => {
        await lockAccount(tx, row.ownerId)
        await tx.execute(
          sql`insert into deployment_billing (deployment_id, account_id) values (${row.id}, ${row.ownerId})
              on conflict (deployment_id) do nothing`,
        )
        const hold = await ensureHeld(tx, {
          accountId: row.ownerId,
          deploymentId: row.id,
          need,
          memo: `hold for the first interval of deployment ${row.id}`,
        })
        if (hold.covered) {
          if (hold.added > 0n) {
            await appendAudit(tx, [
              {
                ownerId: row.ownerId,
                source: systemSource('billing'),
                action: 'billing.hold',
                target: `deployment:${row.id}`,
                detail: { microUsd: hold.added.toString() },
              },
            ])
          }
          return null
        }
        return {
          message: `waiting for payment: the first ${config.pricing.billingIntervalSeconds}s need ${need} micro-USD held, ${hold.available > 0n ? hold.available : 0n} available`,
          retryInMs,
        }
      })
    },
  }
}
