import { jsonb, pgTable, timestamp, uuid } from 'drizzle-orm/pg-core'
import type { QuotaValues } from '../../quotas/quota-limits.ts'
import { accounts } from './accounts.ts'

/** The operator's per-account quota overrides; a limit not named here is the config's default. */
export const accountQuotas = pgTable('account_quotas', {
  accountId: uuid('account_id')
    .primaryKey()
    .references(() => accounts.id),
  overrides: jsonb('overrides').$type<Partial<QuotaValues>>().notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
})
