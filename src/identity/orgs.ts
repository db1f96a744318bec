import { randomUUID } from 'node:crypto'
import { and, asc, eq, isNull, or, sql } from 'drizzle-orm'
import { appendAudit } from '../audit/audit-log.ts'
import { type Db, queryRows, type Tx, uniqueViolation } from '../db/client.ts'
import { accounts, apiKeys, orgMembers } from '../db/schema/index.ts'
import type { ChangeSource } from '../domain/actor.ts'
import { conflict, forbidden, notFound } from '../domain/errors.ts'
import { isUuid } from '../domain/ids.ts'
import type { OrgRole } from '../domain/roles.ts'
import { type Account, normalizeAddress } from './accounts.ts'

// Organisations: owners whose members (wallet addresses, with a role each) act for them. An
// organisation is an account of kind `org`, so everything that belongs to an owner (deployments,
// balance, quotas, notifications, its own Docker network) works for it unchanged.
//
// Someone who is not a member learns nothing of an organisation: it answers like a missing one.
// An organisation always keeps at least one owner. Every change is written to the organisation's
// audit log in its own transaction.

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

/**
 * Memberships and roles looked up in the last second are reused: acting for an organisation is
 * then no dearer than acting for oneself on a busy account. A change of members in this process
 * clears them at once; another replica sees it within the second (as with sessions).
 */
const CACHE_MS = 1000
const CACHE_MAX = 10_000

export function createOrgs(db: Db) {
  const cache = new Map<string, { value: Membership | OrgRole | null; at: number }>()
  async function cached<T extends Membership | OrgRole | null>(
    key: string,
    load: () => Promise<T>,
  ): Promise<T> {
    const hit = cache.get(key)
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.value as T
    const value = await load()
    if (cache.size >= CACHE_MAX) cache.clear()
    cache.set(key, { value, at: Date.now() })
    return value
  }

  /** The membership of `account` in the organisation `ref` (its id or slug), or not_found. */
  async function membership(account: Account, ref: string): Promise<Membership> {
    if (!account.address) throw notFound('organisation')
    const address = normalizeAddress(account.address)
    const found = await cached(`m:${address}:${ref}`, () => lookUpMembership(address, ref))
    if (!found) throw notFound('organisation')
    return found
  }

  async function lookUpMembership(address: string, ref: string): Promise<Membership | null> {
    const byRef = isUuid(ref) ? or(eq(accounts.id, ref), eq(accounts.slug, ref)) : eq(accounts.slug, ref)
    const [row] = await db
      .select({ org: accounts, role: orgMembers.role })
      .from(accounts)
      .innerJoin(orgMembers, eq(orgMembers.orgId, accounts.id))
      .where(
        and(eq(accounts.kind, 'org'), isNull(accounts.deletedAt), byRef, eq(orgMembers.address, address)),
      )
    if (!row) return null
    return { org: { ...row.org, name: row.org.name!, slug: row.org.slug! }, role: row.role }
  }

  /**
   * Refuses (409) a change that would leave the organisation without an owner; returns the
   * member's role before the change (null for a non-member).
   */
  async function keepAnOwner(
    tx: Tx,
    orgId: string,
    address: string,
    nextRole: OrgRole | null,
  ): Promise<OrgRole | null> {
    // The members' rows are locked, so two changes at once cannot each remove "the other" owner.
    const rows = await queryRows<{ address: string; role: string }>(
      tx,
      sql`select address, role from org_members where org_id = ${orgId} for update`,
    )
    const owners = rows.filter((m) => m.role === 'owner').map((m) => m.address)
    if (owners.length === 1 && owners[0] === address && nextRole !== 'owner') {
      throw conflict('an organisation keeps at least one owner: make another member owner first')
    }
    return (rows.find((m) => m.address === address)?.role as OrgRole | undefined) ?? null
  }

  /** Changes members: what was cached of anyone's membership is looked up afresh. */
  async function changingMembers<T>(change: () => Promise<T>): Promise<T> {
    try {
      return await change()
    } finally {
      cache.clear()
    }
  }

  const audit = (
    tx: Tx,
    orgId: string,
    source: ChangeSource,
    action: string,
    target: string,
    detail?: Record<string, unknown>,
  ) => appendAudit(tx, [{ ownerId: orgId, source, action, target, ...(detail ? { detail } : {}) }])

  return {
    membership,

    /** A new organisation, with its creator (a wallet) as owner. */
    async create(
      creator: Account,
      input: { name: string; slug: string },
      source: ChangeSource,
    ): Promise<Membership> {
      if (!creator.address) throw forbidden('organisations are made and joined by wallets')
      const id = randomUUID()
      const owner = normalizeAddress(creator.address)
      try {
        await changingMembers(() =>
          db.transaction(async (tx) => {
            await tx.insert(accounts).values({ id, kind: 'org', name: input.name, slug: input.slug })
            await tx.insert(orgMembers).values({ orgId: id, address: owner, role: 'owner' })
            await audit(tx, id, source, 'org.create', `org:${input.slug}`, { name: input.name, owner })
          }),
        )
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
        .where(and(eq(orgMembers.address, normalizeAddress(account.address)), isNull(accounts.deletedAt)))
        .orderBy(asc(accounts.slug))
      return rows.map((r) => ({ id: r.id, name: r.name!, slug: r.slug!, role: r.role }))
    },

    /** The role of `address` in the organisation, or null when it is not a member. */
    async roleOf(orgId: string, address: string): Promise<OrgRole | null> {
      const member = normalizeAddress(address)
      return cached(`r:${orgId}:${member}`, async () => {
        const [row] = await db
          .select({ role: orgMembers.role })
          .from(orgMembers)
          .where(and(eq(orgMembers.orgId, orgId), eq(orgMembers.address, member)))
        return row?.role ?? null
      })
    },

    async members(orgId: string): Promise<Member[]> {
      return db
        .select({ address: orgMembers.address, role: orgMembers.role, addedAt: orgMembers.addedAt })
        .from(orgMembers)
        .where(eq(orgMembers.orgId, orgId))
        .orderBy(asc(orgMembers.addedAt), asc(orgMembers.address))
    },

    async addMember(orgId: string, address: string, role: OrgRole, source: ChangeSource): Promise<Member> {
      const member = normalizeAddress(address)
      return changingMembers(() =>
        db.transaction(async (tx) => {
          // Shares the lock a deletion takes: a member is never added to an organisation being deleted.
          const [org] = await queryRows<{ deleted_at: Date | null }>(
            tx,
            sql`select deleted_at from accounts where id = ${orgId} for share`,
          )
          if (!org || org.deleted_at) throw notFound('organisation')
          const [row] = await tx
            .insert(orgMembers)
            .values({ orgId, address: member, role })
            .onConflictDoNothing()
            .returning({ address: orgMembers.address, role: orgMembers.role, addedAt: orgMembers.addedAt })
          if (!row) throw conflict(`${member} is already a member`)
          await audit(tx, orgId, source, 'org.member_add', `member:${member}`, { role })
          return row
        }),
      )
    },

    async changeRole(orgId: string, address: string, role: OrgRole, source: ChangeSource): Promise<Member> {
      const member = normalizeAddress(address)
      return changingMembers(() =>
        db.transaction(async (tx) => {
          const before = await keepAnOwner(tx, orgId, member, role)
          const [row] = await tx
            .update(orgMembers)
            .set({ role })
            .where(and(eq(orgMembers.orgId, orgId), eq(orgMembers.address, member)))
            .returning({ address: orgMembers.address, role: orgMembers.role, addedAt: orgMembers.addedAt })
          if (!row) throw notFound('member')
          await audit(tx, orgId, source, 'org.member_role', `member:${member}`, { from: before, to: role })
          return row
        }),
      )
    },

    async removeMember(orgId: string, address: string, source: ChangeSource): Promise<void> {
      const member = normalizeAddress(address)
      await changingMembers(() =>
        db.transaction(async (tx) => {
          const before = await keepAnOwner(tx, orgId, member, null)
          const removed = await tx
            .delete(orgMembers)
            .where(and(eq(orgMembers.orgId, orgId), eq(orgMembers.address, member)))
            .returning({ address: orgMembers.address })
          if (removed.length === 0) throw notFound('member')
          await audit(tx, orgId, source, 'org.member_remove', `member:${member}`, { role: before })
        }),
      )
    },

    /**
     * Deletes the organisation: its members are removed and its keys revoked, so it answers like a
     * missing one from then on. Refused while it still has deployments (not already being
     * deleted) or money, which would otherwise be left with nobody able to reach them.
     */
    async remove(org: Org, source: ChangeSource): Promise<void> {
      await changingMembers(() =>
        db.transaction(async (tx) => {
          await tx.execute(sql`select id from accounts where id = ${org.id} for update`)
          const [left] = await queryRows<{ deployments: number; balance: string }>(
            tx,
            sql`select (select count(*)::int from deployments where owner_id = ${org.id} and desired_state <> 'deleted') as deployments,
                     (select coalesce(sum(amount_micro_usd), 0)::text from ledger_postings
                       where account_id = ${org.id} and book in ('available', 'held')) as balance`,
          )
          if (left!.deployments > 0) {
            throw conflict(`${org.slug} still has ${left!.deployments} deployment(s): delete them first`)
          }
          if (BigInt(left!.balance) !== 0n) {
            throw conflict(`${org.slug} still has a balance of ${left!.balance} micro-USD`)
          }
          await tx.update(accounts).set({ deletedAt: sql`now()` }).where(eq(accounts.id, org.id))
          await tx.delete(orgMembers).where(eq(orgMembers.orgId, org.id))
          await tx
            .update(apiKeys)
            .set({ revokedAt: sql`now()` })
            .where(and(eq(apiKeys.accountId, org.id), isNull(apiKeys.revokedAt)))
          await audit(tx, org.id, source, 'org.delete', `org:${org.slug}`)
        }),
      )
    },
  }
}

export type Orgs = ReturnType<typeof createOrgs>
