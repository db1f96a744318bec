import { randomBytes, randomUUID } from 'node:crypto'
import { and, eq, isNull } from 'drizzle-orm'
import { errors, jwtVerify, SignJWT } from 'jose'
import { appendAudit } from '../audit/audit-log.ts'
import { publicUrlOf } from '../config/load.ts'
import type { Config } from '../config/schema.ts'
import type { Db } from '../db/client.ts'
import { accounts, sessions, settings } from '../db/schema/index.ts'
import type { ChangeSource } from '../domain/actor.ts'
import { unauthorized } from '../domain/errors.ts'
import { isSealed } from '../secrets/envelope.ts'
import { SYSTEM_OWNER, type Vault } from '../secrets/vault.ts'
import type { Account } from './accounts.ts'

// Sessions are HS256 JWTs whose `jti` is a row in `sessions`: the signature makes verification
// cheap and tamper-proof, the row makes logout (revocation) take effect immediately.

/**
 * A verified token and its session row are reused this long, saving a signature check and a query
 * per request under load. A logout in
 * this process drops its entry at once; one on another process sharing the database takes effect
 * here within this time.
 */
const SESSION_CACHE_MS = 1000
const SESSION_CACHE_MAX = 10_000

const SECRET_KEY = 'session_secret'
const ALGORITHM = 'HS256'

export interface IssuedSession {
  token: string
  sessionId: string
  accountId: string
  expiresAt: Date
}

export interface VerifiedSession {
  sessionId: string
  account: Account
}

export interface Sessions {
  /** The `iss` of every session token: the public URL's origin. */
  readonly issuer: string
  /** Inserts the session row and signs its token; `db` lets a caller include it in a transaction. */
  create(accountId: string, db?: Db): Promise<IssuedSession>
  /** Returns the session's account, or throws `unauthorized` saying why the token is refused. */
  verify(token: string): Promise<VerifiedSession>
  /** Marks the account's session revoked; revoking twice is harmless. */
  revoke(accountId: string, sessionId: string, source: ChangeSource): Promise<void>
}

export interface SessionsOptions {
  db: Db
  config: Config
  now: () => Date
  /** Opens (or seals, on first start) the session secret kept in the database. */
  vault: Vault
}

export async function createSessions(options: SessionsOptions): Promise<Sessions> {
  const { db, config, now } = options
  const issuer = publicUrlOf(config).origin
  const key = new TextEncoder().encode(await loadSessionSecret(db, config, options.vault))
  /** Verified tokens: the token itself → its session, when verified, and when it expires. */
  const cache = new Map<string, { session: VerifiedSession; expiresAt: number; cachedAt: number }>()

  return {
    issuer,

    async create(accountId, tx = db) {
      const sessionId = randomUUID()
      const issuedAt = now()
      // Whole seconds, because that is what `exp` can carry; the row and the token then agree.
      const expSeconds = Math.floor(issuedAt.getTime() / 1000) + config.sessionTtlSeconds
      const expiresAt = new Date(expSeconds * 1000)
      await tx.insert(sessions).values({ id: sessionId, accountId, createdAt: issuedAt, expiresAt })
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
        .setIssuer(issuer)
        .setSubject(accountId)
        .setJti(sessionId)
        .setIssuedAt(Math.floor(issuedAt.getTime() / 1000))
        .setExpirationTime(expSeconds)
        .sign(key)
      return { token, sessionId, accountId, expiresAt }
    },

    async verify(token) {
      const at = now()
      // The same token verified moments ago: its signature and claims cannot have changed.
      const hit = cache.get(token)
      if (hit && at.getTime() - hit.cachedAt < SESSION_CACHE_MS && hit.expiresAt > at.getTime()) {
        return hit.session
      }
      let claims: { jti?: string; sub?: string }
      try {
        ;({ payload: claims } = await jwtVerify(token, key, {
          issuer,
          algorithms: [ALGORITHM],
          currentDate: at,
          requiredClaims: ['jti', 'sub', 'exp'],
        }))
      } catch (cause) {
        throw sessionTokenError(cause)
      }
      const [row] = await db
        .select({ session: sessions, account: accounts })
        .from(sessions)
        .innerJoin(accounts, eq(accounts.id, sessions.accountId))
        .where(eq(sessions.id, claims.jti!))
      // A signed token without a row means the database was reset or the secret leaked: refuse it.
      if (!row || row.session.accountId !== claims.sub) throw unauthorized('unknown session')
      if (row.session.revokedAt) throw unauthorized('session revoked')
      if (row.session.expiresAt.getTime() <= at.getTime()) throw unauthorized('session expired')
      const { id, address, externalSubject } = row.account
      const session = { sessionId: row.session.id, account: { id, address, externalSubject } }
      if (cache.size >= SESSION_CACHE_MAX) cache.clear()
      cache.set(token, { session, expiresAt: row.session.expiresAt.getTime(), cachedAt: at.getTime() })
      return session
    },

    async revoke(accountId, sessionId, source) {
      await db.transaction(async (tx) => {
        const revoked = await tx
          .update(sessions)
          .set({ revokedAt: now() })
          .where(
            and(eq(sessions.id, sessionId), eq(sessions.accountId, accountId), isNull(sessions.revokedAt)),
          )
          .returning({ id: sessions.id })
        if (revoked.length === 0) return
        await appendAudit(tx, [
          { ownerId: accountId, source, action: 'session.revoke', target: `session:${sessionId}` },
        ])
      })
      // After the row: a verify racing the update cannot cache the session as still valid.
      for (const [token, entry] of cache) if (entry.session.sessionId === sessionId) cache.delete(token)
    },
  }
}

function sessionTokenError(cause: unknown) {
  const error =
    cause instanceof errors.JWTExpired
      ? unauthorized('session expired')
      : cause instanceof errors.JWSSignatureVerificationFailed
        ? unauthorized('session token signature is invalid')
        : cause instanceof errors.JWTClaimValidationFailed
          ? unauthorized(`session token claim "${cause.claim}" is invalid: ${cause.reason}`)
          : unauthorized('session token is malformed')
  error.cause = cause
  return error
}

const SESSION_SECRET_PLACE = { ownerId: SYSTEM_OWNER, row: 'settings:session_secret', field: 'value' }

/**
 * The configured secret, or one generated on first start and kept sealed in `settings`.
 * Insert-if-absent followed by a read means concurrent first starts of several replicas all end
 * up with the winner's. A secret kept in the clear by an older berth is sealed on the way.
 */
export async function loadSessionSecret(db: Db, config: Config, vault: Vault): Promise<string> {
  if (config.sessionSecret) return config.sessionSecret
  const fresh = randomBytes(32).toString('base64url')
  await db
    .insert(settings)
    .values({ key: SECRET_KEY, value: await vault.seal(SESSION_SECRET_PLACE, fresh) })
    .onConflictDoNothing({ target: settings.key })
  const [row] = await db.select({ value: settings.value }).from(settings).where(eq(settings.key, SECRET_KEY))
  if (isSealed(row!.value)) return vault.open(SESSION_SECRET_PLACE, row!.value)
  await db
    .update(settings)
    .set({ value: await vault.seal(SESSION_SECRET_PLACE, row!.value) })
    .where(and(eq(settings.key, SECRET_KEY), eq(settings.value, row!.value)))
  return row!.value
}
