import { randomUUID } from 'node:crypto'
import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from '../context.ts'

const acceptable = /^[A-Za-z0-9._-]{1,128}$/

/** Uses the caller's X-Request-Id when it is sane, otherwise makes one; echoes it back. */
export function requestId(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const given = c.req.header('x-request-id')
    const id = given && acceptable.test(given) ? given : randomUUID()
    c.set('requestId', id)
    c.header('x-request-id', id)
    await next()
  }
}
