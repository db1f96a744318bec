import { randomUUID } from 'node:crypto'
import { and, asc, eq, or, sql } from 'drizzle-orm'
import { type Db, queryRows, type Tx, uniqueViolation } from '../db/client.ts'
import { accounts, orgMembers } from '../db/schema/index.ts'
import { conflict, forbidden, notFound } from '../domain/errors.ts'
import type { OrgRole } from '../domain/roles.ts'
import { type Account, normalizeAddress } from './accounts.ts'

// Organisations: owners whose members (wallet addresses, with a role each) act for them. An
// organisation is an account of kind `org`, so everything that belongs to an owner (deployments,
// balance, quotas, notifications, its own Docker network) works for it unchanged.
//
// Someone who is not a member learns nothing of an organisation: it answers like a missing one.
// An organisation always keeps at least one owner.

export interface Org {
  id: string
  name: string
  slug: string
}

export interface Membership {
  org: Org & Account
  role: OrgRole
}

export interface Member {
  address: string
  role: OrgRole
  addedAt: Date
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function createOrgs(db: Db) {
  /** The membership of `account` in the organisation `ref` (its id or slug), or not_found. */
  async function membership(account: Account, ref: string): Promise<Membership> {
    if (!account.address) throw notFound('organisation')
    const byRef = UUID.test(ref) ? or(eq(accounts.id, ref), eq(accounts.slug, ref)) : eq(accounts.slug, ref)
    const [row] = await db
      .select({ org: accounts, role: orgMembers.role })
      .from(accounts)
      .innerJoin(orgMembers, eq(orgMembers.orgId, accounts.id))
      .where(and(eq(accounts.kind, 'org'), byRef, eq(orgMembers.address, normalizeAddress(account.address))))
    if (!row) throw notFound('organisation')
    return { org: { ...row.org, name: row.org.name!, slug: row.org.slug! }, role: row.role }
  }

  /** Refuses (409) a change that would leave the organisation without an owner. */
  async function keepAnOwner(tx: Tx, orgId: string, address: string, nextRole: OrgRole | null) {
    // The members' rows are locked, so two changes at once cannot each remove "the other" owner.
    const rows = await queryRows<{ address: string; role: string }>(
      tx,
      sql`select address, role from org_members where org_id = ${orgId} for update`,
    )
    const owners = rows.filter((m) => m.role === 'owner').map((m) => m.address)
    if (owners.length === 1 && owners[0] === address && nextRole !== 'owner') {
      throw conflict('an organisation keeps at least one owner: make another member owner first')
    }
  }

  return {
    membership,

    /** A new organisation, with its creator (a wallet) as owner. */
    async create(creator: Account, input: { name: string; slug: string }): Promise<Membership> {
      if (!creator.address) throw forbidden('organisations are made and joined by wallets')
      const id = randomUUID()
      try {
        await db.transaction(async (tx) => {
          await tx.insert(accounts).values({ id, kind: 'org', name: input.name, slug: input.slug })
          await tx
            .insert(orgMembers)
            .values({ orgId: id, address: normalizeAddress(creator.address!), role: 'owner' })
        })
      } catch (error) {
        if (uniqueViolation(error) === 'accounts_slug_key') {
          throw conflict(`the slug "${input.slug}" is taken`, { field: 'slug' })
        }
        throw error
      }
      return membership(creator, id)
    },

    /** The organisations `account` is a member of, with its role in each. */
    async listFor(account: Account): Promise<Array<Org & { role: OrgRole }>> {
      if (!account.address) return []
      const rows = await db
        .select({ id: accounts.id, name: accounts.name, slug: accounts.slug, role: orgMembers.role })
        .from(orgMembers)
        .innerJoin(accounts, eq(accounts.id, orgMembers.orgId))
        .where(eq(orgMembers.address, normalizeAddress(account.address)))
        .orderBy(asc(accounts.slug))
      return rows.map((r) => ({ id: r.id, name: r.name!, slug: r.slug!, role: r.role }))
    },

    /** The role of `address` in the organisation, or null when it is not a member. */
    async roleOf(orgId: string, address: string): Promise<OrgRole | null> {
      const [row] = await db
        .select({ role: orgMembers.role })
        .from(orgMembers)
        .where(and(eq(orgMembers.orgId, orgId), eq(orgMembers.address, normalizeAddress(address))))
      return row?.role ?? null
    },

    async members(orgId: string): Promise<Member[]> {
      return db
        .select({ address: orgMembers.address, role: orgMembers.role, addedAt: orgMembers.addedAt })
        .from(orgMembers)
        .where(eq(orgMembers.orgId, orgId))
        .orderBy(asc(orgMembers.addedAt), asc(orgMembers.address))
    },

    async addMember(orgId: string, address: string, role: OrgRole): Promise<Member> {
      const [row] = await db
        .insert(orgMembers)
        .values({ orgId, address: normalizeAddress(address), role })
        .onConflictDoNothing()
        .returning({ address: orgMembers.address, role: orgMembers.role, addedAt: orgMembers.addedAt })
      if (!row) throw conflict(`${normalizeAddress(address)} is already a member`)
      return row
    },

    async changeRole(orgId: string, address: string, role: OrgRole): Promise<Member> {
      const member = normalizeAddress(address)
      return db.transaction(async (tx) => {
        await keepAnOwner(tx, orgId, member, role)
        const [row] = await tx
          .update(orgMembers)
          .set({ role })
          .where(and(eq(orgMembers.orgId, orgId), eq(orgMembers.address, member)))
          .returning({ address: orgMembers.address, role: orgMembers.role, addedAt: orgMembers.addedAt })
        if (!row) throw notFound('member')
        return row
      })
    },

    async removeMember(orgId: string, address: string): Promise<void> {
      const member = normalizeAddress(address)
      await db.transaction(async (tx) => {
        await keepAnOwner(tx, orgId, member, null)
        const removed = await tx
          .delete(orgMembers)
          .where(and(eq(orgMembers.orgId, orgId), eq(orgMembers.address, member)))
          .returning({ address: orgMembers.address })
        if (removed.length === 0) throw notFound('member')
      })
    },
  }
}

export type Orgs = ReturnType<typeof createOrgs>
