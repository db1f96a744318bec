import { sql } from 'drizzle-orm'
import { check, index, pgTable, primaryKey, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import { orgRoles, type Scope } from '../../domain/roles.ts'
import { at } from './columns.ts'

/**
 * An owner: a personal account (a wallet address, or an external identity's subject) or an
 * organisation (a name and a slug; its members act for it). Deployments, balances, quotas, keys
 * and notifications belong to one.
 */
export const accounts = pgTable(
  'accounts',
  {
    id: uuid('id').primaryKey(),
    kind: text('kind', { enum: ['personal', 'org'] })
      .notNull()
      .default('personal'),
    address: text('address'),
    externalSubject: text('external_subject'),
    /** An organisation's display name and its slug (unique, used in URLs and Berth-Org). */
    name: text('name'),
    slug: text('slug'),
    createdAt: at('created_at').notNull().defaultNow(),
    /**
     * When an organisation was deleted. Its row stays (its ledger and audit log refer to it) and
     * its slug stays taken, so nobody can later pose as the deleted organisation under its name.
     */
    deletedAt: at('deleted_at'),
  },
  (t) => [
    uniqueIndex('accounts_address_key').on(t.address).where(sql`${t.address} is not null`),
    uniqueIndex('accounts_external_subject_key')
      .on(t.externalSubject)
      .where(sql`${t.externalSubject} is not null`),
    uniqueIndex('accounts_slug_key').on(t.slug).where(sql`${t.slug} is not null`),
    check('accounts_kind_check', sql`${t.kind} in ('personal', 'org')`),
    // An organisation has a name and a slug and no wallet of its own; a person has no slug.
    check(
      'accounts_org_shape_check',
      sql`(${t.kind} = 'org') = (${t.slug} is not null and ${t.name} is not null and ${t.address} is null and ${t.externalSubject} is null)`,
    ),
  ],
)

/**
 * Members of an organisation, by wallet address: someone may be added before ever signing in.
 * Their role says what they may do when acting for the organisation.
 */
export const orgMembers = pgTable(
  'org_members',
  {
    orgId: uuid('org_id')
      .notNull()
      .references(() => accounts.id),
    address: text('address').notNull(),
    role: text('role', { enum: orgRoles }).notNull(),
    addedAt: at('added_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.orgId, t.address] }),
    index('org_members_address_idx').on(t.address),
    check('org_members_role_check', sql`${t.role} in (${sql.raw(orgRoles.map((r) => `'${r}'`).join(', '))})`),
  ],
)

/** SIWE nonces; `used_at` is set exactly once, which is what makes a signed message single-use. */
export const authNonces = pgTable('auth_nonces', {
  nonce: text('nonce').primaryKey(),
  createdAt: at('created_at').notNull().defaultNow(),
  expiresAt: at('expires_at').notNull(),
  usedAt: at('used_at'),
})

export const sessions = pgTable(
  'sessions',
  {
    id: uuid('id').primaryKey(),
    accountId: uuid('account_id')
      .notNull()
      .references(() => accounts.id),
    createdAt: at('created_at').notNull().defaultNow(),
    expiresAt: at('expires_at').notNull(),
    revokedAt: at('revoked_at'),
  },
  (t) => [index('sessions_account_idx').on(t.accountId)],
)

export const apiKeys = pgTable(
  'api_keys',
  {
    id: uuid('id').primaryKey(),
    accountId: uuid('account_id')
      .notNull()
      .references(() => accounts.id),
    name: text('name').notNull(),
    /** The first characters of the key, shown in listings so a user can tell keys apart. */
    prefix: text('prefix').notNull(),
    keyHash: text('key_hash').notNull(),
    /** What the key may do; null: everything its owner may (keys made before scopes existed). */
    scopes: text('scopes').array().$type<Scope[]>(),
    expiresAt: at('expires_at'),
    /**
     * For an organisation's key: the member who made it. The key never does more than that
     * member's role allows now, and stops when the member leaves.
     */
    createdBy: text('created_by'),
    createdAt: at('created_at').notNull().defaultNow(),
    lastUsedAt: at('last_used_at'),
    /** The client address of that last use. */
    lastUsedIp: text('last_used_ip'),
    revokedAt: at('revoked_at'),
  },
  (t) => [uniqueIndex('api_keys_key_hash_key').on(t.keyHash), index('api_keys_account_idx').on(t.accountId)],
)
