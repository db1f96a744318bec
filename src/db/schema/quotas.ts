import { jsonb, pgTable, uuid } from 'drizzle-orm/pg-core'
import { accounts } from './accounts.ts'
import { at } from './columns.ts'

/** The operator's per-account quota overrides; a limit not named here is the config's default. */
export const accountQuotas = pgTable('account_quotas', {
  accountId: uuid('account_id')
    .primaryKey()
    .references(() => accounts.id),
  /** Limit name → value; quotas/quota-store.ts validates it on every read. */
  overrides: jsonb('overrides').$type<Record<string, number>>().notNull(),
  updatedAt: at('updated_at').notNull().defaultNow(),
})
