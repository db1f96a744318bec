import type { Context } from 'hono'
import type { ChangeSource } from '../domain/actor.ts'
import { unauthorized } from '../domain/errors.ts'
import type { Account } from '../identity/accounts.ts'
import { actingAccount, type Principal, sourceOf } from '../identity/principal.ts'
import type { AppEnv } from './context.ts'

/** The principal requireAuth put on the request. */
export function principalOf(c: Context<AppEnv>): Principal {
  const principal = c.get('principal')
  // Only reachable on a route mounted without requireAuth in front of it.
  if (!principal) throw unauthorized('missing bearer token')
  return principal
}

/** The account the request acts for; the operator admin token has none (403). */
export function accountOf(c: Context<AppEnv>): Account {
  return actingAccount(principalOf(c))
}

/** The request as the source of the change it asks for (its actor, address and id): for the audit log. */
export function sourceOfRequest(c: Context<AppEnv>): ChangeSource {
  return sourceOf(principalOf(c))
}
