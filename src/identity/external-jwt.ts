import { createRemoteJWKSet, errors, jwtVerify } from 'jose'
import type { Config } from '../config/schema.ts'
import type { Db } from '../db/client.ts'
import { BerthError, unauthorized } from '../domain/errors.ts'
import { type Account, findOrCreateAccountBySubject } from './accounts.ts'

// Integrators bring JWTs from their own identity provider. The subject is namespaced by issuer so
// that a different issuer configured later can never take over an existing account.

export interface ExternalJwtVerifier {
  readonly issuer: string
  /** The token's account (created on first sight), or `unauthorized` saying why it is refused. */
  verify(token: string): Promise<Account>
}

export interface ExternalJwtOptions {
  db: Db
  settings: NonNullable<Config['externalJwt']>
  now: () => Date
  /** Tolerated clock difference with the issuer. */
  clockSkewSeconds: number
}

export function createExternalJwtVerifier(options: ExternalJwtOptions): ExternalJwtVerifier {
  const { db, settings, now, clockSkewSeconds } = options
  // One key set per process: jose caches the fetched keys and refetches on an unknown `kid`.
  const keys = createRemoteJWKSet(new URL(settings.jwksUrl))

  return {
    issuer: settings.issuer,
    async verify(token) {
      let subject: string | undefined
      let issuer: string | undefined
      try {
        const { payload } = await jwtVerify(token, keys, {
          issuer: settings.issuer,
          ...(settings.audience ? { audience: settings.audience } : {}),
          currentDate: now(),
          clockTolerance: clockSkewSeconds,
          // A token that never expires would be a key nobody can revoke; one without a subject
          // names no account.
          requiredClaims: ['exp', 'sub'],
        })
        subject = payload.sub
        issuer = payload.iss
      } catch (cause) {
        throw externalTokenError(cause)
      }
      if (!subject) throw unauthorized('external token has no "sub" claim')
      return findOrCreateAccountBySubject(db, `${issuer}|${subject}`)
    },
  }
}

function externalTokenError(cause: unknown): BerthError {
  // The issuer's key set being unreachable or unusable is our dependency failing, not the
  // caller's token: answer 503 so that clients retry instead of discarding a good token.
  if (isKeySetFailure(cause)) {
    return new BerthError('provider_unavailable', "cannot fetch the external issuer's signing keys", {
      cause,
    })
  }
  const error =
    cause instanceof errors.JWTExpired
      ? unauthorized('external token expired')
      : cause instanceof errors.JWTClaimValidationFailed
        ? unauthorized(`external token claim "${cause.claim}" is invalid: ${cause.reason}`)
        : cause instanceof errors.JWKSNoMatchingKey
          ? unauthorized("external token is signed with a key that is not in the issuer's key set")
          : cause instanceof errors.JWSSignatureVerificationFailed
            ? unauthorized('external token signature is invalid')
            : unauthorized(`external token refused: ${(cause as Error).message}`)
  error.cause = cause
  return error
}

function isKeySetFailure(cause: unknown): boolean {
  // jose lets fetch's own errors (connection refused, DNS) through unwrapped, and reports a bad
  // HTTP status or body as a generic JOSEError naming the key set.
  if (!(cause instanceof errors.JOSEError)) return true
  return (
    cause instanceof errors.JWKSTimeout ||
    cause instanceof errors.JWKSInvalid ||
    (cause.code === 'ERR_JOSE_GENERIC' && cause.message.includes('JSON Web Key Set'))
  )
}
