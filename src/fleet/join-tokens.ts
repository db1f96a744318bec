import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { Db, Tx } from '../db/client.ts'
import { numberedSql, queryRows } from '../db/client.ts'
import { forbidden } from '../domain/errors.ts'

// Join tokens admit nodes to a closed fleet. The operator makes one (for one machine, or for a
// batch of them with a use count) and hands it to the node operator; berth keeps only its hash.

export interface NewJoinToken {
  note?: string | undefined
  /** How many enrollments it admits; absent: any number until it expires. */
  maxUses?: number | undefined
  expiresInSeconds: number
}

export interface IssuedJoinToken {
  id: string
  /** Shown once. */
  token: string
  usesLeft: number | null
  expiresAt: Date
}

const hashOf = (token: string) => createHash('sha256').update(token).digest('hex')

export async function createJoinToken(db: Db, input: NewJoinToken, now: Date): Promise<IssuedJoinToken> {
  const id = randomUUID()
  const token = `bjt_${randomBytes(32).toString('base64url')}`
  const expiresAt = new Date(now.getTime() + input.expiresInSeconds * 1000)
  await db.execute(
    numberedSql(
      `insert into fleet_join_tokens (id, token_hash, note, uses_left, created_at, expires_at)
       values ($1, $2, $3, $4, $5, $6)`,
      [id, hashOf(token), input.note ?? null, input.maxUses ?? null, now, expiresAt],
    ),
  )
  return { id, token, usesLeft: input.maxUses ?? null, expiresAt }
}

/** Uses the token once, in the enrollment's transaction; refuses (403) one that admits no more. */
export async function useJoinToken(tx: Tx, token: string, now: Date): Promise<string> {
  // One conditional UPDATE: of concurrent enrollments with a token's last use, exactly one wins.
  const [used] = await queryRows<{ id: string }>(
    tx,
    numberedSql(
      `update fleet_join_tokens set uses_left = uses_left - 1
       where token_hash = $1 and revoked_at is null and expires_at > $2 and (uses_left is null or uses_left > 0)
       returning id`,
      [hashOf(token), now],
    ),
  )
  if (!used)
    throw forbidden('the join token is unknown, expired, used up or revoked: ask the operator for one')
  return used.id
}
