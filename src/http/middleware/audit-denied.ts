import type { MiddlewareHandler } from 'hono'
import type { Logger } from 'pino'
import type { Audit } from '../../audit/audit.ts'
import { sourceOf } from '../../identity/principal.ts'
import type { AppEnv } from '../context.ts'
import { routeNameOf } from '../route-scopes.ts'
import { READS } from './limits.ts'

// A change refused for want of a role or scope (403) is itself worth knowing: it goes to the
// audit log of the owner the request was for (the organisation in the path, or the one it acted
// for), with outcome `denied`. Reads are not recorded, nor requests for no route at all; this
// runs after the per-account write limit, which bounds how many of these one caller can cause.

/** Enough for any of berth's own paths; what is longer is somebody's padding. */
const MAX_TARGET = 300

export function auditDenied(audit: Pick<Audit, 'recordDenied'>, logger: Logger): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await next()
    if (c.res.status !== 403 || READS.has(c.req.method)) return
    const route = routeNameOf(c.req.method, c.req.path)
    const principal = c.get('principal')
    const ownerId = c.get('auditOwner') ?? principal?.org?.account.id ?? principal?.account?.id
    if (!route || !principal || !ownerId) return
    try {
      const target = c.req.path.slice(0, MAX_TARGET)
      await audit.recordDenied({ ownerId, source: sourceOf(principal), action: route, target })
    } catch (error) {
      // The refusal stands whatever happens to its record.
      logger.error({ err: error, requestId: c.get('requestId') }, 'could not record a refused change')
    }
  }
}
