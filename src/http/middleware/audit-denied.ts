import type { MiddlewareHandler } from 'hono'
import type { Audit } from '../../audit/audit.ts'
import { sourceOf } from '../../identity/principal.ts'
import type { AppEnv } from '../context.ts'
import { routeNameOf } from '../route-scopes.ts'

// A change refused for want of a role or scope (403) is itself worth knowing: it goes to the
// audit log of the owner the request acted for, with outcome `denied`. Reads are not recorded,
// and the per-account write limit bounds how many of these one caller can cause.

const READS = new Set(['GET', 'HEAD', 'OPTIONS'])

export function auditDenied(audit: Pick<Audit, 'recordDenied'>): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await next()
    if (c.res.status !== 403 || READS.has(c.req.method)) return
    const principal = c.get('principal')
    const owner = principal?.org?.account ?? principal?.account
    if (!principal || !owner) return
    await audit.recordDenied({
      ownerId: owner.id,
      source: sourceOf(principal),
      action: routeNameOf(c.req.method, c.req.path),
      target: c.req.path,
    })
  }
}
