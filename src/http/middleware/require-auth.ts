import type { Context, MiddlewareHandler } from 'hono'
import type { Authenticator } from '../../identity/authenticator.ts'
import type { AppEnv } from '../context.ts'

/**
 * Every /v1 route needs a principal, except the two SIWE sign-in steps and the fleet's: the agent
 * install script is public, an enrollment is signed by a wallet and a heartbeat by the agent key.
 */
const publicPaths = new Set([
  '/v1/auth/nonce',
  '/v1/auth/verify',
  '/v1/fleet/enroll',
  '/v1/fleet/heartbeats',
  '/v1/fleet/install.sh',
  '/v1/fleet/assignments',
  '/v1/fleet/logs',
])

/**
 * `?access_token=` is taken only where a browser cannot send a header: a WebSocket upgrade or an
 * EventSource (which asks for text/event-stream). Anywhere else a token in the URL would end up in
 * proxy logs and browser history for no reason, so it is ignored there.
 */
function streamingRequest(c: Context<AppEnv>): boolean {
  return c.req.path.endsWith('/ws') || (c.req.header('accept') ?? '').includes('text/event-stream')
}

export function requireAuth(auth: Authenticator): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (publicPaths.has(c.req.path)) return next()
    const queryToken = streamingRequest(c) ? c.req.query('access_token') : undefined
    const authorization = c.req.header('authorization')
    const ip = c.get('clientIp')
    const principal = await auth.authenticate(authorization, queryToken, ip)
    c.set('principal', { ...principal, via: { ip, requestId: c.get('requestId') } })
    c.set('credential', { authorization, queryToken })
    await next()
  }
}
