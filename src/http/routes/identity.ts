import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import type { Hex } from 'viem'
import { forbidden, invalidInput } from '../../domain/errors.ts'
import { roleScopes, scopes } from '../../domain/roles.ts'
import type { Account } from '../../identity/accounts.ts'
import type { Identity } from '../../identity/create-identity.ts'
import { actingAccount, type Principal } from '../../identity/principal.ts'
import type { AppEnv } from '../context.ts'
import { createRouter } from '../openapi.ts'
import { principalOf, sourceOfRequest } from '../principal.ts'
import { errorResponses, errorSchema, json } from '../schemas.ts'

// Sign-in (SIWE), session and API key routes.

/** The two sign-in steps need no token (the document's default security is the bearer token). */
const publicRoute = [] as const
const notForAdmin = json(
  errorSchema,
  'The admin token has no account to own keys; keys are created and revoked with a session, not a key',
)

const ok = z.object({ ok: z.literal(true) }).openapi('AuthOk')

const nonceRoute = createRoute({
  method: 'post',
  path: '/v1/auth/nonce',
  tags: ['auth'],
  summary: 'Issue a single-use SIWE nonce',
  security: [...publicRoute],
  responses: {
    200: {
      description: 'A nonce, and the domain and URI the signed message must name',
      content: {
        'application/json': {
          schema: z
            .object({ nonce: z.string(), expiresAt: z.iso.datetime(), domain: z.string(), uri: z.string() })
            .openapi('AuthNonce'),
        },
      },
    },
  },
})

const verifyRoute = createRoute({
  method: 'post',
  path: '/v1/auth/verify',
  tags: ['auth'],
  summary: 'Exchange a signed SIWE (EIP-4361) message for a session token',
  security: [...publicRoute],
  request: {
    body: {
      required: true,
      content: {
        'application/json': {
          schema: z
            .strictObject({
              message: z.string().min(1).max(8192),
              signature: z.string().regex(/^0x[0-9a-fA-F]+$/, 'must be a 0x-prefixed hex string'),
            })
            .openapi('AuthVerifyRequest'),
        },
      },
    },
  },
  responses: {
    200: {
      description: 'Signed in',
      content: {
        'application/json': {
          schema: z
            .object({
              token: z.string(),
              accountId: z.uuid(),
              address: z.string().openapi({ description: 'Lower-case wallet address' }),
              expiresAt: z.iso.datetime(),
            })
            .openapi('AuthSession'),
        },
      },
    },
    ...errorResponses,
  },
})

const logoutRoute = createRoute({
  method: 'post',
  path: '/v1/auth/logout',
  tags: ['auth'],
  summary: 'Revoke the current session token',
  responses: {
    200: { description: 'Revoked', content: { 'application/json': { schema: ok } } },
    ...errorResponses,
  },
})

const meRoute = createRoute({
  method: 'get',
  path: '/v1/auth/me',
  tags: ['auth'],
  summary: 'Who the bearer token authenticates',
  responses: {
    200: {
      description: 'The principal',
      content: {
        'application/json': {
          schema: z
            .object({
              accountId: z.uuid().nullable(),
              address: z.string().nullable(),
              kind: z.enum(['session', 'api_key', 'external_jwt', 'admin']),
            })
            .openapi('AuthMe'),
        },
      },
    },
    ...errorResponses,
  },
})

const apiKeyInfo = z
  .object({
    id: z.uuid(),
    name: z.string(),
    prefix: z.string().openapi({ description: 'The first 12 characters of the key' }),
    scopes: z.array(z.enum(scopes)).nullable().openapi({ description: 'null: all its owner may do' }),
    expiresAt: z.iso.datetime().nullable(),
    createdBy: z
      .string()
      .nullable()
      .openapi({ description: "An organisation's key: the member who made it" }),
    createdAt: z.iso.datetime(),
    lastUsedAt: z.iso.datetime().nullable(),
    lastUsedIp: z.string().nullable().openapi({ description: 'The client address of that last use' }),
  })
  .openapi('ApiKey')

const createApiKeyRoute = createRoute({
  method: 'post',
  path: '/v1/api-keys',
  tags: ['api-keys'],
  summary: 'Create an API key; the key is returned once and never again',
  request: {
    body: {
      required: true,
      content: {
        'application/json': {
          schema: z
            .strictObject({
              name: z.string().min(1).max(64),
              /** Absent: all its owner may do (for an organisation: the maker's role). */
              scopes: z.array(z.enum(scopes)).min(1).max(scopes.length).optional(),
              expiresAt: z.iso.datetime({ offset: true }).optional(),
            })
            .openapi('ApiKeyCreateRequest'),
        },
      },
    },
  },
  responses: {
    201: {
      description: 'Created',
      content: {
        'application/json': {
          schema: z
            .object({
              id: z.uuid(),
              name: z.string(),
              prefix: z.string(),
              key: z.string(),
              createdAt: z.iso.datetime(),
            })
            .openapi('ApiKeyCreated'),
        },
      },
    },
    ...errorResponses,
    403: notForAdmin,
  },
})

const listApiKeysRoute = createRoute({
  method: 'get',
  path: '/v1/api-keys',
  tags: ['api-keys'],
  summary: "List the account's API keys (never the keys themselves)",
  responses: {
    200: {
      description: 'Live keys, newest first',
      content: {
        'application/json': { schema: z.object({ items: z.array(apiKeyInfo) }).openapi('ApiKeyList') },
      },
    },
    ...errorResponses,
    403: notForAdmin,
  },
})

const deleteApiKeyRoute = createRoute({
  method: 'delete',
  path: '/v1/api-keys/{id}',
  tags: ['api-keys'],
  summary: 'Revoke an API key',
  request: { params: z.object({ id: z.uuid() }) },
  responses: {
    200: { description: 'Revoked', content: { 'application/json': { schema: ok } } },
    ...errorResponses,
    403: notForAdmin,
  },
})

export function identityRoutes({ siwe, sessions, apiKeys }: Identity): OpenAPIHono<AppEnv> {
  const router = createRouter()

  router.openapi(nonceRoute, async (c) => {
    const issued = await siwe.issueNonce()
    return c.json({ ...issued, expiresAt: issued.expiresAt.toISOString() }, 200)
  })

  router.openapi(verifyRoute, async (c) => {
    const { message, signature } = c.req.valid('json')
    const signedIn = await siwe.verify(message, signature as Hex, {
      ip: c.get('clientIp'),
      requestId: c.get('requestId'),
    })
    return c.json(
      {
        token: signedIn.token,
        accountId: signedIn.accountId,
        address: signedIn.address,
        expiresAt: signedIn.expiresAt.toISOString(),
      },
      200,
    )
  })

  router.openapi(logoutRoute, async (c) => {
    const principal = principalOf(c)
    if (principal.kind !== 'session' || !principal.sessionId) {
      throw invalidInput(
        `logout ends a session, but this request is authenticated by ${describeKind(principal.kind)}`,
      )
    }
    await sessions.revoke(principal.account!.id, principal.sessionId, sourceOfRequest(c))
    return c.json({ ok: true as const }, 200)
  })

  router.openapi(meRoute, (c) => {
    const { kind, account } = principalOf(c)
    return c.json({ accountId: account?.id ?? null, address: account?.address ?? null, kind }, 200)
  })

  router.openapi(createApiKeyRoute, async (c) => {
    const account = keyManagerOf(c)
    const { name, scopes: asked, expiresAt } = c.req.valid('json')
    const expiry = expiresAt === undefined ? undefined : new Date(expiresAt)
    if (expiry && expiry.getTime() <= Date.now()) {
      throw invalidInput('expiresAt: must be in the future', [{ path: 'expiresAt', message: 'in the past' }])
    }
    // An organisation's key never does more than its maker's role allows (now, and later).
    const { org } = principalOf(c)
    if (org && asked) {
      const beyond = asked.filter((scope) => !roleScopes[org.role].includes(scope))
      if (beyond.length)
        throw forbidden(`as ${org.role} of ${org.account.slug} you cannot give ${beyond.join(', ')}`)
    }
    const created = await apiKeys.create(
      account.id,
      {
        name,
        ...(asked ? { scopes: asked } : {}),
        ...(expiry ? { expiresAt: expiry } : {}),
        ...(org ? { createdBy: principalOf(c).account!.address! } : {}),
      },
      sourceOfRequest(c),
    )
    return c.json(
      {
        id: created.id,
        name: created.name,
        prefix: created.prefix,
        key: created.key,
        createdAt: created.createdAt.toISOString(),
      },
      201,
    )
  })

  router.openapi(listApiKeysRoute, async (c) => {
    const items = await apiKeys.list(keyOwnerOf(c).id)
    return c.json(
      {
        items: items.map((key) => ({
          ...key,
          expiresAt: key.expiresAt?.toISOString() ?? null,
          createdAt: key.createdAt.toISOString(),
          lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
        })),
      },
      200,
    )
  })

  router.openapi(deleteApiKeyRoute, async (c) => {
    await apiKeys.revoke(keyManagerOf(c).id, c.req.valid('param').id, sourceOfRequest(c))
    return c.json({ ok: true as const }, 200)
  })

  return router
}

/** Keys belong to the owner the request acts for: the caller's own account, or its organisation. */
function keyOwnerOf(c: Context<AppEnv>): Account {
  const principal = principalOf(c)
  if (!principal.account) throw forbidden('API keys belong to an account, and the admin token has none')
  return actingAccount(principal)
}

/**
 * Keys are made and revoked by a person signed in (a wallet session, or an external JWT), never by
 * another key: a leaked key must not be able to mint keys that outlive its own revocation.
 */
function keyManagerOf(c: Context<AppEnv>): Account {
  const account = keyOwnerOf(c)
  if (principalOf(c).kind === 'api_key') {
    throw forbidden('API keys are created and revoked with a wallet session, not with an API key')
  }
  return account
}

function describeKind(kind: Principal['kind']): string {
  return {
    session: 'a session',
    api_key: 'an API key',
    external_jwt: 'an external JWT',
    admin: 'the admin token',
  }[kind]
}
