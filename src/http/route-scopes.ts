import type { Scope } from '../domain/roles.ts'

// The scope each route needs when a request acts for an organisation: a member's role grants
// scopes (domain/roles.ts), and a route not listed here cannot be used for an organisation at all.
// `self` routes are about the caller in person (its sign-in, its organisations) and need none;
// the operator's admin routes need the admin token instead. A test checks that every operation of
// the API document is listed, and the README's role matrix is this table.

export type RouteScope = Scope | 'self' | 'operator'

export const routeScopes: ReadonlyArray<readonly [method: string, path: string, scope: RouteScope]> = [
  ['GET', '/health', 'self'],
  ['POST', '/v1/auth/nonce', 'self'],
  ['POST', '/v1/auth/verify', 'self'],
  ['POST', '/v1/auth/logout', 'self'],
  ['GET', '/v1/auth/me', 'self'],
  ['GET', '/v1/orgs', 'self'],
  ['POST', '/v1/orgs', 'self'],
  // An organisation's own routes name it in the path and check the caller's role there.
  ['GET', '/v1/orgs/{org}', 'self'],
  ['DELETE', '/v1/orgs/{org}', 'self'],
  ['GET', '/v1/orgs/{org}/members', 'self'],
  ['POST', '/v1/orgs/{org}/members', 'self'],
  ['PATCH', '/v1/orgs/{org}/members/{address}', 'self'],
  ['DELETE', '/v1/orgs/{org}/members/{address}', 'self'],
  // Fleet agents authenticate by signature (a wallet's at enrollment, the agent key's after).
  ['GET', '/v1/fleet/install.sh', 'self'],
  ['GET', '/v1/fleet/assignments', 'self'],
  ['POST', '/v1/fleet/logs', 'self'],
  ['POST', '/v1/fleet/enroll', 'self'],
  ['POST', '/v1/fleet/heartbeats', 'self'],
  ['GET', '/v1/deployments', 'deployments:read'],
  ['GET', '/v1/deployments/{id}', 'deployments:read'],
  ['GET', '/v1/deployments/{id}/events', 'deployments:read'],
  ['GET', '/v1/deployments/{id}/ws', 'deployments:read'],
  ['GET', '/v1/deployments/{id}/usage', 'deployments:read'],
  ['GET', '/v1/registry-credentials', 'deployments:read'],
  ['GET', '/v1/nfts', 'deployments:read'],
  ['GET', '/v1/quotas', 'deployments:read'],
  ['GET', '/v1/my/nodes', 'deployments:read'],
  ['GET', '/v1/my/nodes/earnings', 'payments:read'],
  ['GET', '/v1/nodes/{id}', 'deployments:read'],
  ['GET', '/v1/networks', 'deployments:read'],
  ['GET', '/v1/templates', 'deployments:read'],
  ['GET', '/v1/templates/{template}', 'deployments:read'],
  ['GET', '/v1/deployments/{id}/logs', 'logs:read'],
  ['GET', '/v1/deployments/{id}/logs/ws', 'logs:read'],
  ['POST', '/v1/deployments', 'deployments:write'],
  ['POST', '/v1/registry-credentials', 'deployments:write'],
  ['DELETE', '/v1/registry-credentials/{id}', 'deployments:write'],
  // Whoever may change a deployment may read the credentials it was made with; readers may not.
  ['GET', '/v1/deployments/{id}/credentials', 'deployments:write'],
  ['POST', '/v1/deployments/{id}/credentials/rotate', 'deployments:write'],
  ['DELETE', '/v1/deployments/{id}', 'deployments:write'],
  ['POST', '/v1/deployments/{id}/stop', 'deployments:write'],
  ['POST', '/v1/deployments/{id}/start', 'deployments:write'],
  ['POST', '/v1/deployments/{id}/restart', 'deployments:write'],
  ['POST', '/v1/nfts/{chainId}/{contract}/{tokenId}/deploy', 'deployments:write'],
  ['GET', '/v1/balance', 'payments:read'],
  ['GET', '/v1/ledger', 'payments:read'],
  ['GET', '/v1/orders/{id}', 'payments:read'],
  ['GET', '/v1/deployments/{id}/billing', 'payments:read'],
  ['POST', '/v1/quotes', 'payments:write'],
  ['POST', '/v1/orders/{id}/payments', 'payments:write'],
  ['GET', '/v1/events', 'notifications:read'],
  ['GET', '/v1/notifications', 'notifications:read'],
  // The inbox's read marks are the only thing it changes: every reader may keep them.
  ['POST', '/v1/notifications/read', 'notifications:read'],
  ['GET', '/v1/webhooks', 'notifications:read'],
  ['GET', '/v1/webhooks/{id}', 'notifications:read'],
  ['GET', '/v1/webhooks/{id}/deliveries', 'notifications:read'],
  ['POST', '/v1/webhooks', 'notifications:write'],
  ['PATCH', '/v1/webhooks/{id}', 'notifications:write'],
  ['DELETE', '/v1/webhooks/{id}', 'notifications:write'],
  ['POST', '/v1/webhooks/{id}/test', 'notifications:write'],
  ['POST', '/v1/webhooks/{id}/deliveries/{deliveryId}/retry', 'notifications:write'],
  ['GET', '/v1/notification-channels', 'notifications:read'],
  ['GET', '/v1/notification-channels/{id}', 'notifications:read'],
  ['GET', '/v1/notification-channels/{id}/deliveries', 'notifications:read'],
  ['POST', '/v1/notification-channels', 'notifications:write'],
  ['PATCH', '/v1/notification-channels/{id}', 'notifications:write'],
  ['DELETE', '/v1/notification-channels/{id}', 'notifications:write'],
  ['POST', '/v1/notification-channels/{id}/test', 'notifications:write'],
  ['POST', '/v1/notification-channels/{id}/deliveries/{deliveryId}/retry', 'notifications:write'],
  ['POST', '/v1/webhooks/{id}/rotate-secret', 'notifications:write'],
  ['POST', '/v1/notification-channels/{id}/verify', 'notifications:write'],
  ['GET', '/v1/audit', 'org:admin'],
  ['GET', '/v1/api-keys', 'org:admin'],
  ['POST', '/v1/api-keys', 'org:admin'],
  ['DELETE', '/v1/api-keys/{id}', 'org:admin'],
  ['POST', '/v1/admin/accounts/{address}/credits', 'operator'],
  ['GET', '/v1/admin/accounts/{address}/quotas', 'operator'],
  ['PUT', '/v1/admin/accounts/{address}/quotas', 'operator'],
  ['POST', '/v1/admin/fleet/join-tokens', 'operator'],
  ['GET', '/v1/nodes', 'operator'],
  ['POST', '/v1/nodes/{id}/cordon', 'operator'],
  ['POST', '/v1/nodes/{id}/uncordon', 'operator'],
  ['POST', '/v1/nodes/{id}/drain', 'operator'],
  ['DELETE', '/v1/nodes/{id}', 'operator'],
]

const matchers = routeScopes.map(([method, path, scope]) => ({
  method,
  path,
  pattern: new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}$`),
  scope,
}))

const routeOf = (method: string, path: string) =>
  matchers.find((m) => m.method === method && m.pattern.test(path))

/** The scope a request needs, or undefined for a route not in the table. */
export function scopeOf(method: string, path: string): RouteScope | undefined {
  return routeOf(method, path)?.scope
}

/** The route a request is for, as the API document writes it (`POST /v1/deployments/{id}/stop`). */
export function routeNameOf(method: string, path: string): string | undefined {
  const route = routeOf(method, path)
  return route && `${method} ${route.path}`
}
