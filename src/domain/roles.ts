// What acting for an organisation allows. Every route needs one scope (http/route-scopes.ts); a
// member's role grants a set of scopes, and a person acting for themselves has them all.

export const orgRoles = ['owner', 'admin', 'deployer', 'billing', 'viewer'] as const
export type OrgRole = (typeof orgRoles)[number]

export const scopes = [
  'deployments:read',
  'deployments:write',
  'logs:read',
  'payments:read',
  'payments:write',
  /** The owner's events, notifications, and the delivery logs of its webhooks and channels. */
  'notifications:read',
  /** Adding, changing and testing webhooks and notification channels. */
  'notifications:write',
  'org:admin',
  /** Deleting the organisation and changing who its owners are. */
  'org:owner',
] as const
export type Scope = (typeof scopes)[number]

const read: Scope[] = ['deployments:read', 'logs:read', 'notifications:read']

/** The scopes each role grants; a role listed later never grants more than one listed earlier. */
export const roleScopes: Record<OrgRole, readonly Scope[]> = {
  owner: scopes,
  admin: scopes.filter((s) => s !== 'org:owner'),
  deployer: [...read, 'deployments:write'],
  billing: ['deployments:read', 'notifications:read', 'payments:read', 'payments:write'],
  viewer: read,
}

/** The roles that grant a scope, strongest last: what a refusal names as needed. */
export function rolesWith(scope: Scope): OrgRole[] {
  return orgRoles.filter((role) => roleScopes[role].includes(scope)).reverse()
}
