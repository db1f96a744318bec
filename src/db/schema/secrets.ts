import { pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core'

/**
 * One data key per owner (account or organisation; the nil id for berth's own secrets), which
 * seals that owner's secrets. Stored only wrapped (encrypted) by a master key, named by its id:
 * rotating the master key re-wraps these rows and touches no sealed value.
 */
export const ownerDataKeys = pgTable('owner_data_keys', {
  ownerId: uuid('owner_id').primaryKey(),
  masterKeyId: text('master_key_id').notNull(),
  wrappedKey: text('wrapped_key').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  rewrappedAt: timestamp('rewrapped_at', { withTimezone: true }),
})
