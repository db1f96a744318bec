import type { Principal } from './principal.ts'

/**
 * Turns an `Authorization: Bearer …` value into a principal, or throws `unauthorized`.
 * Bearer values: a session JWT, an API key (`berth_…`), the operator admin token, or a JWT from the
 * configured external issuer. `queryToken` is the `access_token` query parameter, accepted for
 * clients that cannot set headers (browser EventSource and WebSocket). `clientIp` is
 * recorded as an API key's last use.
 */
export interface Authenticator {
  authenticate(authorization: string | undefined, queryToken?: string, clientIp?: string): Promise<Principal>
}
