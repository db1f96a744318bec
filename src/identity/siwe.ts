import { randomBytes } from 'node:crypto'
import { and, eq, gt, inArray, isNull, lt } from 'drizzle-orm'
import type { Hex } from 'viem'
import { appendAudit } from '../audit/audit-log.ts'
import { publicUrlOf } from '../config/load.ts'
import type { Config } from '../config/schema.ts'
import type { Db, Tx } from '../db/client.ts'
import { authNonces } from '../db/schema/index.ts'
import type { RequestOrigin } from '../domain/actor.ts'
import { unauthorized } from '../domain/errors.ts'
import { BERTH_RESOURCE, ENROLL_STATEMENT } from '../domain/node.ts'
import { findOrCreateAccountByAddress } from './accounts.ts'
import type { IssuedSession, Sessions } from './sessions.ts'
import { parseSiweMessage, type SiweFields } from './siwe-message.ts'

// Sign-In with Ethereum (EIP-4361). The server issues a single-use nonce, the wallet signs a
// message naming this server's domain and that nonce, and a valid signature buys a session.

/** Expired nonces removed per issued nonce: keeps the table small without a separate sweeper. */
const NONCE_PRUNE_BATCH = 100

export interface IssuedNonce {
  nonce: string
  expiresAt: Date
  /** What the message's `domain` and `uri` must be, so that clients need not guess. */
  domain: string
  uri: string
}

export interface SignedIn extends IssuedSession {
  /** Lower-case, as accounts store it. */
  address: string
}

export interface Siwe {
  issueNonce(): Promise<IssuedNonce>
  /** Signs in; `via` is where the request came from, for the audit log. */
  verify(message: string, signature: Hex, via: RequestOrigin): Promise<SignedIn>
  /**
   * Checks a signed message as a sign-in is checked (audience, times, signature), then
   * consumes its nonce and runs `then` in one transaction: for other acts a wallet signs
   * (enrolling a fleet node), whose caller checks what the message says.
   */
  verifySigned<T>(
    message: string,
    signature: Hex,
    then: (tx: Tx, fields: SiweFields) => Promise<T>,
  ): Promise<T>
}

export interface SiweOptions {
  db: Db
  config: Config
  sessions: Sessions
  now: () => Date
}

export function createSiwe(options: SiweOptions): Siwe {
  const { db, config, sessions, now } = options
  const publicUrl = publicUrlOf(config)
  const skewMs = config.siwe.clockSkewSeconds * 1000

  const siwe: Siwe = {
    async issueNonce() {
      const at = now()
      // viem's generateSiweNonce draws from Math.random; a nonce guards against replay, so it
      // comes from the CSPRNG instead (hex is within EIP-4361's alphanumeric nonce alphabet).
      const nonce = randomBytes(16).toString('hex')
      const expiresAt = new Date(at.getTime() + config.siwe.nonceTtlSeconds * 1000)
      await db.insert(authNonces).values({ nonce, createdAt: at, expiresAt })
      // SKIP LOCKED: concurrent sign-ins prune disjoint rows instead of waiting on each other.
      const expired = db
        .select({ nonce: authNonces.nonce })
        .from(authNonces)
        .where(lt(authNonces.expiresAt, at))
        .limit(NONCE_PRUNE_BATCH)
        .for('update', { skipLocked: true })
      await db.delete(authNonces).where(inArray(authNonces.nonce, expired))
      return { nonce, expiresAt, domain: publicUrl.host, uri: publicUrl.origin }
    },

    async verify(message, signature, via) {
      return siwe.verifySigned(message, signature, async (tx, fields) => {
        // Anything that looks like an enrollment (its statement, or any berth resource) is refused,
        // so that no message a wallet signed to enroll a node can ever stand for a sign-in.
        if (
          fields.statement === ENROLL_STATEMENT ||
          fields.resources?.some((r) => r.startsWith(BERTH_RESOURCE))
        ) {
          throw unauthorized('this message enrolls a fleet node; it does not sign in')
        }
        if (config.siwe.chainIds && !config.siwe.chainIds.includes(fields.chainId)) {
          throw unauthorized(
            `chain ID ${fields.chainId} is not accepted here (accepted: ${config.siwe.chainIds.join(', ')})`,
          )
        }
        const account = await findOrCreateAccountByAddress(tx, fields.address)
        const session = await sessions.create(account.id, tx)
        await appendAudit(tx, [
          {
            ownerId: account.id,
            source: { actor: { type: 'account', id: account.address! }, ...via },
            action: 'session.create',
            target: `session:${session.sessionId}`,
          },
        ])
        return { ...session, address: account.address! }
      })
    },

    async verifySigned(message, signature, then) {
      const { verifyMessage, checksumAddress } = await loadViem()
      const fields = parseSiweMessage(message, (address) => checksumAddress(address as Hex) === address)
      checkAudience(fields, publicUrl)
      checkTimes(fields, now().getTime(), skewMs)

      let valid = false
      try {
        valid = await verifyMessage({ address: fields.address, message, signature })
      } catch {
        // A signature of the wrong length or with an invalid recovery byte recovers nothing.
      }
      if (!valid) {
        throw unauthorized(
          `signature does not match address ${fields.address}: the message was altered after signing or signed by another wallet`,
        )
      }

      // The nonce is consumed last, so a request failing any check above cannot burn it, and in
      // the same transaction as what the message buys, so a used nonce always has its effect. A
      // check in `then` that throws rolls the nonce back with everything else.
      return db.transaction(async (tx) => {
        const at = now()
        // One conditional UPDATE is the whole replay guard: Postgres lets exactly one of any
        // number of concurrent requests see `used_at IS NULL`; the others match no row.
        const consumed = await tx
          .update(authNonces)
          .set({ usedAt: at })
          .where(
            and(eq(authNonces.nonce, fields.nonce), isNull(authNonces.usedAt), gt(authNonces.expiresAt, at)),
          )
          .returning({ nonce: authNonces.nonce })
        if (consumed.length === 0) throw unauthorized('nonce is unknown, expired or already used')
        return then(tx, fields)
      })
    },
  }
  return siwe
}

// viem is loaded on the first sign-in, not at start: it is most of an idle server's memory.
let viemModules:
  | Promise<{
      verifyMessage: typeof import('viem').verifyMessage
      checksumAddress: typeof import('viem').checksumAddress
    }>
  | undefined
function loadViem() {
  viemModules ??= import('viem').then((viem) => ({
    verifyMessage: viem.verifyMessage,
    checksumAddress: viem.checksumAddress,
  }))
  return viemModules
}

/** The message must be meant for this server, or a signature given to another site could be replayed here. */
function checkAudience(fields: SiweFields, publicUrl: URL): void {
  if (fields.domain.toLowerCase() !== publicUrl.host.toLowerCase()) {
    throw unauthorized(`message domain "${fields.domain}" is not this server's domain "${publicUrl.host}"`)
  }
  if (fields.scheme !== undefined && `${fields.scheme.toLowerCase()}:` !== publicUrl.protocol) {
    throw unauthorized(`message scheme "${fields.scheme}" is not this server's "${publicUrl.protocol}"`)
  }
  let origin: string | undefined
  try {
    origin = new URL(fields.uri).origin
  } catch {
    // Reported below as a mismatch, with the offending value.
  }
  if (origin !== publicUrl.origin) {
    throw unauthorized(`message URI "${fields.uri}" is not on this server's origin "${publicUrl.origin}"`)
  }
}

function checkTimes(fields: SiweFields, nowMs: number, skewMs: number): void {
  if (fields.issuedAt.getTime() > nowMs + skewMs) {
    throw unauthorized(`message is issued in the future (${fields.issuedAt.toISOString()})`)
  }
  if (fields.expirationTime && fields.expirationTime.getTime() <= nowMs - skewMs) {
    throw unauthorized(`message expired at ${fields.expirationTime.toISOString()}`)
  }
  if (fields.notBefore && fields.notBefore.getTime() > nowMs + skewMs) {
    throw unauthorized(`message is not valid before ${fields.notBefore.toISOString()}`)
  }
}
