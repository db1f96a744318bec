import { decodeJwt, decodeProtectedHeader } from 'jose'
import { BerthError, unauthorized } from '../domain/errors.ts'
import type { ApiKeys, KeyIdentity } from './api-keys.ts'
import { isApiKey } from './api-keys.ts'
import type { Authenticator } from './authenticator.ts'
import type { ExternalJwtVerifier } from './external-jwt.ts'
import type { Orgs } from './orgs.ts'
import type { Principal } from './principal.ts'
import type { Sessions } from './sessions.ts'
import { tokenMatcher } from './token-match.ts'

export interface AuthenticatorParts {
  adminToken: string | undefined
  sessions: Sessions
  apiKeys: ApiKeys
  orgs: Pick<Orgs, 'roleOf'>
  external: ExternalJwtVerifier | undefined
}

export function createAuthenticator(parts: AuthenticatorParts): Authenticator {
  const { sessions, apiKeys, external } = parts
  const isAdminToken = parts.adminToken === undefined ? undefined : tokenMatcher(parts.adminToken)

  /**
   * A key acts for its owner within its scopes. An organisation's key acts with the role its
   * maker has now: never more, and not at all once the maker has left.
   */
  async function keyPrincipal(key: KeyIdentity): Promise<Principal> {
    const scoped = { keyId: key.id, ...(key.scopes ? { scopes: key.scopes } : {}) }
    if (!key.createdBy || !key.account.slug) return { kind: 'api_key', account: key.account, ...scoped }
    const role = await parts.orgs.roleOf(key.account.id, key.createdBy)
    if (!role) throw unauthorized('the member who made this API key is no longer in the organisation')
    const org = { ...key.account, slug: key.account.slug }
    return { kind: 'api_key', account: org, org: { account: org, role }, ...scoped }
  }

  return {
    async authenticate(authorization, queryToken, clientIp) {
      const bearer = bearerOf(authorization, queryToken)
      if (isAdminToken?.(bearer)) return { kind: 'admin' }
      if (isApiKey(bearer)) return keyPrincipal(await apiKeys.authenticate(bearer, clientIp))
      const { issuer, algorithm } = peekJwt(bearer)
      // Our own tokens are HS256; the algorithm check keeps an external issuer configured with
      // our own URL from being verified with the session secret.
      if (issuer === sessions.issuer && algorithm === 'HS256') {
        const { sessionId, account } = await sessions.verify(bearer)
        return { kind: 'session', account, sessionId }
      }
      if (external && issuer === external.issuer) {
        return { kind: 'external_jwt', account: await external.verify(bearer) }
      }
      throw unauthorized(`token issuer "${issuer}" is not trusted`)
    },
  }
}

function bearerOf(authorization: string | undefined, queryToken: string | undefined): string {
  if (authorization) {
    const match = /^Bearer +(\S+) *$/i.exec(authorization)
    if (!match) throw unauthorized('Authorization header must be "Bearer <token>"')
    return match[1]!
  }
  if (queryToken) return queryToken
  throw unauthorized('missing bearer token')
}

/** Reads the claims that pick a verifier; the chosen verifier then checks the signature. */
function peekJwt(token: string): { issuer: string; algorithm: string | undefined } {
  try {
    const issuer = decodeJwt(token).iss
    if (!issuer) throw unauthorized('bearer token has no "iss" claim')
    return { issuer, algorithm: decodeProtectedHeader(token).alg }
  } catch (cause) {
    if (cause instanceof BerthError) throw cause
    const error = unauthorized('bearer token is not an API key, the admin token or a JWT')
    error.cause = cause
    throw error
  }
}

// --- routes ---
