import type { MiddlewareHandler } from 'hono'
import type { Authenticator } from '../../identity/authenticator.ts'
import type { AppEnv } from '../context.ts'

/** Every /v1 route needs a principal, except the two SIWE sign-in steps. */
const publicPaths = new Set(['/v1/auth/nonce', '/v1/auth/verify'])

export function requireAuth(auth: Authenticator): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (publicPaths.has(c.req.path)) return next()
    const principal = await auth.authenticate(c.req.header('authorization'), c.req.query('access_token'))
    c.set('principal', principal)
    await next()
  }
}
