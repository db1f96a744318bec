import { and, eq, isNull, sql } from 'drizzle-orm'
import { appendAudit } from '../audit/audit-log.ts'
import type { Db } from '../db/client.ts'
import { queryRows } from '../db/client.ts'
import { accountQuotas, apiKeys } from '../db/schema/index.ts'
import type { ChangeSource } from '../domain/actor.ts'
import {
  limitsOf,
  type QuotaLimits,
  type QuotaUsage,
  type QuotaValues,
  quotaValuesSchema,
} from './quota-limits.ts'

// Quotas in the database: what an account holds now (summed from its deployments that are not yet
// deleted, and its live API keys) and the operator's overrides of the config's defaults.

/** What an owner's deployments hold, from what each was found to hold when it was created. */
const usageSql = (accountId: string) => sql`
  select
    count(*)::int as deployments,
    coalesce(sum(quota_replicas), 0)::int as replicas,
    coalesce(sum(quota_host_ports), 0)::int as host_ports,
    coalesce(sum(quota_milli_cpus), 0)::bigint as cpus,
    coalesce(sum(quota_memory_mb), 0)::bigint as memory_mb,
    coalesce(sum(quota_disk_mb), 0)::bigint as disk_mb,
    coalesce(sum(quota_volumes), 0)::int as volumes
  from deployments
  where owner_id = ${accountId} and status <> 'deleted'`

interface UsageRow {
  deployments: number
  replicas: number
  host_ports: number
  cpus: string | number
  memory_mb: string | number
  disk_mb: string | number
  volumes: number
}

export function createQuotaStore(db: Db, defaults: QuotaValues) {
  async function overridesOf(accountId: string): Promise<Partial<QuotaValues>> {
    const [row] = await db.select().from(accountQuotas).where(eq(accountQuotas.accountId, accountId))
    return row ? quotaValuesSchema.partial().parse(row.overrides) : {}
  }

  return {
    overridesOf,

    async limitsOf(accountId: string): Promise<QuotaLimits> {
      return limitsOf({ ...defaults, ...(await overridesOf(accountId)) })
    },

    async usageOf(accountId: string): Promise<QuotaUsage> {
      const [row] = await queryRows<UsageRow>(db, usageSql(accountId))
      const [keys] = await db
        .select({ count: sql<number>`count(*)::int` })
        .from(apiKeys)
        .where(and(eq(apiKeys.accountId, accountId), isNull(apiKeys.revokedAt)))
      return {
        deployments: Number(row!.deployments),
        replicas: Number(row!.replicas),
        hostPorts: Number(row!.host_ports),
        cpus: Number(row!.cpus),
        memoryMb: Number(row!.memory_mb),
        diskMb: Number(row!.disk_mb),
        volumes: Number(row!.volumes),
        apiKeys: Number(keys!.count),
      }
    },

    /**
     * Replaces the account's overrides: a key set to null goes back to the default. Returns the
     * overrides now in force.
     */
    async setOverrides(
      accountId: string,
      changes: { [K in keyof QuotaValues]?: QuotaValues[K] | null },
      source: ChangeSource,
    ): Promise<Partial<QuotaValues>> {
      const entries = Object.entries(changes)
      const set = Object.fromEntries(entries.filter((entry): entry is [string, number] => entry[1] !== null))
      const reset = entries.filter(([, value]) => value === null).map(([key]) => key)
      // One statement, so two operators changing different limits at once both land.
      const row = await db.transaction(async (tx) => {
        const [upserted] = await tx
          .insert(accountQuotas)
          .values({ accountId, overrides: set })
          .onConflictDoUpdate({
            target: accountQuotas.accountId,
            set: {
              overrides: sql`(${accountQuotas.overrides} || excluded.overrides) - ${sql.param(reset)}::text[]`,
              updatedAt: sql`now()`,
            },
          })
          .returning()
        await appendAudit(tx, [
          {
            ownerId: accountId,
            source,
            action: 'quota.set',
            target: `account:${accountId}`,
            detail: changes,
          },
        ])
        return upserted!
      })
      return quotaValuesSchema.partial().parse(row.overrides)
    },
  }
}

export type QuotaStore = ReturnType<typeof createQuotaStore>
