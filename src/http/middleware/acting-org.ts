import type { MiddlewareHandler } from 'hono'
import { forbidden } from '../../domain/errors.ts'
import type { Orgs } from '../../identity/orgs.ts'
import { type Principal, requireScope } from '../../identity/principal.ts'
import type { AppEnv } from '../context.ts'
import { scopeOf } from '../route-scopes.ts'

// `Berth-Org: <org id or slug>` makes a request act for that organisation, with the caller's role
// in it; without the header it acts for the caller's own account. Then every route's scope is
// checked against that role (route-scopes.ts).

export const ORG_HEADER = 'berth-org'

/** The principal acting for organisation `ref` (404 for a non-member, as if it did not exist). */
export async function actingFor(
  orgs: Pick<Orgs, 'membership'>,
  principal: Principal,
  ref: string | undefined,
): Promise<Principal> {
  if (!ref) return principal
  // An organisation's key acts for that organisation and no other.
  if (principal.org) {
    const { account } = principal.org
    if (ref === account.id || ref === account.slug) return principal
    throw forbidden(`this API key acts for ${account.slug} only`)
  }
  if (!principal.account) throw forbidden('the operator token does not act for organisations')
  const { org, role } = await orgs.membership(principal.account, ref)
  return { ...principal, org: { account: org, role } }
}

export function actingOrg(orgs: Pick<Orgs, 'membership'>): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const principal = c.get('principal')
    if (!principal) return next()
    const ref = c.req.header(ORG_HEADER)?.trim() || undefined
    const acting = await actingFor(orgs, principal, ref)
    c.set('principal', acting)
    if (ref) c.set('credential', { ...c.get('credential'), orgRef: ref })
    // Acting for an organisation, or with a scoped key: every route needs its scope.
    if (acting.org || acting.scopes) {
      const scope = scopeOf(c.req.method, c.req.path)
      if (scope === undefined || (scope === 'operator' && acting.org)) {
        throw forbidden(
          `${c.req.method} ${c.req.path} cannot be used for an organisation or with a scoped key`,
        )
      }
      if (scope !== 'self' && scope !== 'operator') requireScope(acting, scope)
    }
    await next()
  }
}
