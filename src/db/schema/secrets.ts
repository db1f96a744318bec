import { pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'

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

/**
 * Credentials an owner gives for pulling its own images from a private registry (one per
 * registry). The password is sealed under the owner's data key, bound to this row; it is opened
 * only on the way to a provider pulling one of that owner's images.
 */
export const registryCredentials = pgTable(
  'registry_credentials',
  {
    id: uuid('id').primaryKey(),
    ownerId: uuid('owner_id').notNull(),
    registry: text('registry').notNull(),
    username: text('username').notNull(),
    password: text('password').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('registry_credentials_owner_registry').on(t.ownerId, t.registry)],
)
