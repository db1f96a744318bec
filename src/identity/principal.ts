import type { Actor, ChangeSource } from '../domain/actor.ts'
import { forbidden } from '../domain/errors.ts'
import { type OrgRole, roleScopes, rolesWith, type Scope } from '../domain/roles.ts'
import type { Account } from './accounts.ts'

/** Who a request (or a use case) acts as: what authentication established. */
export interface Principal {
  kind: 'session' | 'api_key' | 'external_jwt' | 'admin'
  /** Absent only for the operator admin token. */
  account?: Account
  /** The session id, for logout. */
  sessionId?: string
  /** The organisation the request acts for (Berth-Org, or an organisation's key), and the role. */
  org?: { account: Account & { slug: string }; role: OrgRole }
  /** An API key's scopes; absent: everything the owner (or the role) allows. */
  scopes?: readonly Scope[]
  /** The API key's id, for a request made with one. */
  keyId?: string
  /** Where the request came from: its client address and request id, for the audit log. */
  via?: { ip: string; requestId: string }
}

/** Who the principal is, as the audit log and deployment events name it. */
export function actorOf(principal: Principal): Actor {
  if (principal.kind === 'admin') return { type: 'operator', id: 'admin' }
  if (principal.keyId) return { type: 'key', id: principal.keyId }
  const account = principal.account!
  return { type: 'account', id: account.address ?? account.externalSubject ?? account.id }
}

/**
 * The principal as the source of a change it asks for. The operator's own address is left out:
 * its changes land in tenants' logs, which tenants read.
 */
export function sourceOf(principal: Principal): ChangeSource {
  return {
    actor: actorOf(principal),
    ip: principal.kind === 'admin' ? null : (principal.via?.ip ?? null),
    requestId: principal.via?.requestId ?? null,
  }
}

/** The owner a principal acts for: its organisation, else its own account; the operator has none. */
export function actingAccount(principal: Principal): Account {
  if (principal.org) return principal.org.account
  if (!principal.account) {
    throw forbidden('this route acts for an account; use a wallet session, an API key or a JWT')
  }
  return principal.account
}

/** Whether the caller's key scopes and role (when acting for an organisation) allow `scope`. */
export function allows(principal: Principal, scope: Scope): boolean {
  if (principal.scopes && !principal.scopes.includes(scope)) return false
  return !principal.org || roleScopes[principal.org.role].includes(scope)
}

/**
 * Refuses (403, naming what is missing) what the caller's API key scopes, or its role in the
 * organisation it acts for, do not allow. Acting for oneself with a session, everything is allowed.
 */
export function requireScope(principal: Principal, scope: Scope): void {
  if (allows(principal, scope)) return
  if (principal.scopes && !principal.scopes.includes(scope)) {
    throw forbidden(
      `this API key does not have the ${scope} scope (it has ${principal.scopes.join(', ') || 'none'})`,
    )
  }
  const org = principal.org!
  throw forbidden(
    `this needs the ${rolesWith(scope).join(' or ')} role in ${org.account.slug} (${scope}); you are ${org.role}`,
  )
}

/** How an account is shown as a deployment's owner: its wallet, its external subject, or org:<slug>. */
export function ownerLabel(account: Account): string {
  if (account.slug) return `org:${account.slug}`
  return account.address ?? account.externalSubject ?? account.id
}
