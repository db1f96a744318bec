import { eq, sql } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { accounts } from '../db/schema/index.ts'
import type { ChangeSource } from '../domain/actor.ts'
import { BerthError } from '../domain/errors.ts'
import type { DeploymentSpec } from '../domain/spec.ts'
import { type Account, findOrCreateAccountByAddress, normalizeAddress } from '../identity/accounts.ts'
import { createQuotaAdmission, type Release } from './admission.ts'
import { demandOf, noUsage, type QuotaValues, valuesOf } from './quota-limits.ts'
import { createQuotaStore } from './quota-store.ts'

// Per-account quotas: the config's defaults, the operator's overrides, and admission of new
// deployments and API keys against them.

export interface QuotaView {
  address: string | null
  limits: QuotaValues
  overrides: Partial<QuotaValues>
  usage: QuotaValues
}

export function createQuotas(db: Db, defaults: QuotaValues) {
  const store = createQuotaStore(db, defaults)
  const admission = createQuotaAdmission(store)

  async function viewOf(account: Pick<Account, 'id' | 'address'>): Promise<QuotaView> {
    const [limits, overrides, usage] = await Promise.all([
      store.limitsOf(account.id),
      store.overridesOf(account.id),
      store.usageOf(account.id),
    ])
    return { address: account.address, limits: valuesOf(limits), overrides, usage: valuesOf(usage) }
  }

  /**
   * A refusal for a quota tells the owner (`quota.reached`), at most once an hour per quota, so a
   * script retrying in a loop does not flood its webhooks. The refusal writes nothing else, so the
   * event is written on its own; failing to write it never hides the refusal.
   */
  async function tellReached(accountId: string, error: unknown): Promise<never> {
    if (error instanceof BerthError && error.code === 'quota_exceeded') {
      const details = error.details as { quota: string }
      await db
        .execute(
          sql`insert into outbox_events (owner_id, type, payload)
              select ${accountId}, 'quota.reached', ${JSON.stringify(details)}::jsonb
               where not exists (
                 select 1 from outbox_events
                  where owner_id = ${accountId} and type = 'quota.reached'
                    and payload->>'quota' = ${details.quota} and created_at > now() - interval '1 hour')`,
        )
        .catch(() => {})
    }
    throw error
  }

  return {
    viewOf,

    /** Admits a new deployment, or refuses it with quota_exceeded; release once it is written. */
    admitDeployment(accountId: string, spec: DeploymentSpec): Promise<Release> {
      return admission.admit(accountId, demandOf(spec)).catch((e: unknown) => tellReached(accountId, e))
    },

    admitApiKey(accountId: string): Promise<Release> {
      return admission
        .admit(accountId, { ...noUsage(), apiKeys: 1 })
        .catch((e: unknown) => tellReached(accountId, e))
    },

    /** A wallet berth has not met yet has the defaults and uses nothing: nothing is created. */
    async viewOfAddress(address: string): Promise<QuotaView> {
      const normalized = normalizeAddress(address)
      const [account] = await db.select().from(accounts).where(eq(accounts.address, normalized))
      if (account) return viewOf(account)
      return { address: normalized, limits: defaults, overrides: {}, usage: valuesOf(noUsage()) }
    },

    async override(
      address: string,
      changes: { [K in keyof QuotaValues]?: QuotaValues[K] | null },
      source: ChangeSource,
    ): Promise<QuotaView> {
      const account = await findOrCreateAccountByAddress(db, address)
      await store.setOverrides(account.id, changes, source)
      return viewOf(account)
    },
  }
}

export type Quotas = ReturnType<typeof createQuotas>
