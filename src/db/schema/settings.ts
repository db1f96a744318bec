import { pgTable, text, timestamp } from 'drizzle-orm/pg-core'

/** Values the control plane generates once and every replica shares (e.g. the session secret). */
export const settings = pgTable('settings', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
})
