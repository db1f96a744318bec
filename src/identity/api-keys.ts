import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { and, desc, eq, isNull } from 'drizzle-orm'
import { appendAudit } from '../audit/audit-log.ts'
import type { Db } from '../db/client.ts'
import { accounts, apiKeys } from '../db/schema/index.ts'
import type { ChangeSource } from '../domain/actor.ts'
import { notFound, unauthorized } from '../domain/errors.ts'
import type { Scope } from '../domain/roles.ts'
import type { Account } from './accounts.ts'

// Only a SHA-256 of each key is stored: the keys are 256 random bits, so a fast unsalted hash is
// enough to make a leaked table useless, and it lets a lookup use the unique index directly.

export const API_KEY_PREFIX = 'berth_'
const SHOWN_PREFIX_LENGTH = 12
/**
 * `last_used_at` is advisory; writing it on every request would turn each read into a write. It is
 * written at most once a minute, or at once when the key is used from another address.
 */
const LAST_USED_RESOLUTION_MS = 60_000

export interface ApiKeyInfo {
  id: string
  name: string
  prefix: string
  /** What the key may do; null: all its owner may. */
  scopes: Scope[] | null
  expiresAt: Date | null
  /** The member who made an organisation's key. */
  createdBy: string | null
  createdAt: Date
  lastUsedAt: Date | null
  /** The client address of the last use. */
  lastUsedIp: string | null
}

export interface NewApiKey {
  name: string
  scopes?: Scope[]
  expiresAt?: Date
  createdBy?: string
}

/** Who a key acts as: its owner, what it may do, and (an organisation's key) who made it. */
export interface KeyIdentity {
  id: string
  account: Account
  scopes: Scope[] | null
  createdBy: string | null
}

export interface CreatedApiKey extends ApiKeyInfo {
  /** The plain key: shown once, never stored. */
  key: string
}

export interface ApiKeys {
  create(accountId: string, key: NewApiKey, source: ChangeSource): Promise<CreatedApiKey>
  /** The account's live keys, newest first, without key or hash. */
  list(accountId: string): Promise<ApiKeyInfo[]>
  /** Revokes the account's key; another account's key is `not_found`, like an absent one. */
  revoke(accountId: string, id: string, source: ChangeSource): Promise<void>
  /** The key's owner and limits, or `unauthorized` saying why the key is refused. */
  authenticate(key: string, clientIp?: string): Promise<KeyIdentity>
}

export function isApiKey(bearer: string): boolean {
  return bearer.startsWith(API_KEY_PREFIX)
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

export function createApiKeys(options: {
  db: Db
  now: () => Date
  /** The account's API key quota: refuses, or admits until the key is written. */
  admit?: (accountId: string) => Promise<() => void>
}): ApiKeys {
  const { db, now } = options
  const info = {
    id: apiKeys.id,
    name: apiKeys.name,
    prefix: apiKeys.prefix,
    scopes: apiKeys.scopes,
    expiresAt: apiKeys.expiresAt,
    createdBy: apiKeys.createdBy,
    createdAt: apiKeys.createdAt,
    lastUsedAt: apiKeys.lastUsedAt,
    lastUsedIp: apiKeys.lastUsedIp,
  }

  return {
    async create(accountId, { name, scopes, expiresAt, createdBy }, source) {
      const key = API_KEY_PREFIX + randomBytes(32).toString('base64url')
      const release = await options.admit?.(accountId)
      const row = await db
        .transaction(async (tx) => {
          const [inserted] = await tx
            .insert(apiKeys)
            .values({
              id: randomUUID(),
              accountId,
              name,
              prefix: key.slice(0, SHOWN_PREFIX_LENGTH),
              keyHash: hashApiKey(key),
              scopes: scopes ?? null,
              expiresAt: expiresAt ?? null,
              createdBy: createdBy ?? null,
              createdAt: now(),
            })
            .returning(info)
          const detail = { name, scopes: scopes ?? null, expiresAt: expiresAt?.toISOString() ?? null }
          await appendAudit(tx, [
            {
              ownerId: accountId,
              source,
              action: 'api_key.create',
              target: `api_key:${inserted!.id}`,
              detail,
            },
          ])
          return inserted!
        })
        .finally(() => release?.())
      return { ...row, key }
    },

    list(accountId) {
      return db
        .select(info)
        .from(apiKeys)
        .where(and(eq(apiKeys.accountId, accountId), isNull(apiKeys.revokedAt)))
        .orderBy(desc(apiKeys.createdAt), apiKeys.id)
    },

    async revoke(accountId, id, source) {
      // Kept as a revoked row rather than deleted, so that using the key later says "revoked".
      await db.transaction(async (tx) => {
        const [revoked] = await tx
          .update(apiKeys)
          .set({ revokedAt: now() })
          .where(and(eq(apiKeys.id, id), eq(apiKeys.accountId, accountId), isNull(apiKeys.revokedAt)))
          .returning({ name: apiKeys.name })
        if (!revoked) throw notFound(`API key ${id}`)
        await appendAudit(tx, [
          { ownerId: accountId, source, action: 'api_key.revoke', target: `api_key:${id}`, detail: revoked },
        ])
      })
    },

    async authenticate(key, clientIp) {
      const [row] = await db
        .select({ key: apiKeys, account: accounts })
        .from(apiKeys)
        .innerJoin(accounts, eq(accounts.id, apiKeys.accountId))
        .where(eq(apiKeys.keyHash, hashApiKey(key)))
      if (!row) throw unauthorized('unknown API key')
      if (row.key.revokedAt) throw unauthorized('API key revoked')
      const at = now()
      if (row.key.expiresAt && row.key.expiresAt <= at) throw unauthorized('API key expired')
      const lastUsed = row.key.lastUsedAt
      const ip = clientIp ?? row.key.lastUsedIp
      if (
        !lastUsed ||
        at.getTime() - lastUsed.getTime() >= LAST_USED_RESOLUTION_MS ||
        ip !== row.key.lastUsedIp
      ) {
        await db.update(apiKeys).set({ lastUsedAt: at, lastUsedIp: ip }).where(eq(apiKeys.id, row.key.id))
      }
      const { id, address, externalSubject, slug } = row.account
      return {
        id: row.key.id,
        account: { id, address, externalSubject, slug },
        scopes: row.key.scopes,
        createdBy: row.key.createdBy,
      }
    },
  }
}
