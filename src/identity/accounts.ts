import { randomUUID } from 'node:crypto'
import { eq, sql } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { accounts } from '../db/schema/index.ts'

export interface Account {
  id: string
  address: string | null
  externalSubject: string | null
  /** Set for an organisation only. */
  slug?: string | null
}

/** Addresses are stored lower-case so that checksum casing never splits one wallet into two. */
export function normalizeAddress(address: string): string {
  return address.toLowerCase()
}

export async function findOrCreateAccountByAddress(db: Db, address: string): Promise<Account> {
  const normalized = normalizeAddress(address)
  await db
    .insert(accounts)
    .values({ id: randomUUID(), address: normalized })
    .onConflictDoNothing({ target: accounts.address, where: sql`${accounts.address} is not null` })
  const [row] = await db.select().from(accounts).where(eq(accounts.address, normalized))
  return row!
}

export async function findOrCreateAccountBySubject(db: Db, subject: string): Promise<Account> {
  await db
    .insert(accounts)
    .values({ id: randomUUID(), externalSubject: subject })
    .onConflictDoNothing({
      target: accounts.externalSubject,
      where: sql`${accounts.externalSubject} is not null`,
    })
  const [row] = await db.select().from(accounts).where(eq(accounts.externalSubject, subject))
  return row!
}
