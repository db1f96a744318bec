import { createRoute, z } from '@hono/zod-openapi'
import type { DeploymentStore, Intent } from '../../control/deployment-store.ts'
import { invalidInput } from '../../domain/errors.ts'
import { statuses } from '../../domain/lifecycle.ts'
import { deploymentSpecSchema } from '../../domain/spec.ts'
import type { Nft } from '../../nft/nft.ts'
import type { ProviderRegistry } from '../../providers/provider.ts'
import { createRouter } from '../openapi.ts'
import { accountOf, ownerLabel } from '../principal.ts'
import { deploymentSchema, errorResponses, errorSchema, idParam } from '../schemas.ts'
import { deploymentView } from '../views.ts'

export interface DeploymentRoutesDeps {
  store: DeploymentStore
  providers: ProviderRegistry
  /** Holder checks for NFT-bound deployments; absent: bound specs are refused. */
  nft?: Pick<Nft, 'prepareCreate' | 'checkIntent'>
}

const json = (schema: z.ZodType, description: string) => ({
  description,
  content: { 'application/json': { schema } },
})

const createDeployment = createRoute({
  method: 'post',
  path: '/v1/deployments',
  tags: ['deployments'],
  summary: 'Create a deployment',
  request: {
    headers: z.object({ 'idempotency-key': z.string().min(1).max(128).optional() }),
    body: { required: true, content: { 'application/json': { schema: deploymentSpecSchema } } },
  },
  responses: {
    202: json(deploymentSchema, 'Accepted; the deployment converges in the background'),
    403: json(errorSchema, 'The spec binds an NFT the caller does not hold'),
    409: json(errorSchema, 'Name taken, NFT already bound, or Idempotency-Key reused with another body'),
    ...errorResponses,
  },
})

const listDeployments = createRoute({
  method: 'get',
  path: '/v1/deployments',
  tags: ['deployments'],
  request: {
    query: z.object({
      status: z.enum(statuses).optional(),
      limit: z.coerce.number().int().min(1).max(500).default(50),
      offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
    }),
  },
  responses: {
    200: json(z.object({ items: z.array(deploymentSchema), total: z.number() }), 'Deployments'),
    ...errorResponses,
  },
})

const getDeployment = createRoute({
  method: 'get',
  path: '/v1/deployments/{id}',
  tags: ['deployments'],
  request: { params: idParam },
  responses: { 200: json(deploymentSchema, 'The deployment'), ...errorResponses },
})

const intentRoute = (intent: Intent) =>
  createRoute({
    method: intent === 'delete' ? 'delete' : 'post',
    path: intent === 'delete' ? '/v1/deployments/{id}' : `/v1/deployments/{id}/${intent}`,
    tags: ['deployments'],
    summary: `${intent[0]!.toUpperCase()}${intent.slice(1)} a deployment`,
    request: { params: idParam },
    responses: {
      202: json(deploymentSchema, 'Accepted'),
      403: json(errorSchema, 'An NFT-bound deployment and the caller does not hold the token'),
      409: json(errorSchema, 'The deployment is being deleted'),
      ...errorResponses,
    },
  })

export function deploymentRoutes(deps: DeploymentRoutesDeps) {
  const router = createRouter()

  router.openapi(createDeployment, async (c) => {
    const account = accountOf(c)
    let spec = c.req.valid('json')
    if (spec.nft) {
      if (!deps.nft)
        throw invalidInput('NFT-bound deployments are not configured on this server', [
          { path: 'nft', message: 'no nftCollections configured' },
        ])
      spec = await deps.nft.prepareCreate(account, spec)
    }
    const provider = spec.provider ?? deps.providers.defaultName
    if (!deps.providers.get(provider)) {
      throw invalidInput(`unknown provider "${provider}"; available: ${deps.providers.names().join(', ')}`, [
        { path: 'provider', message: 'not configured' },
      ])
    }
    const { row } = await deps.store.create({
      ownerId: account.id,
      spec,
      provider,
      ...(c.req.valid('header')['idempotency-key']
        ? { idempotencyKey: c.req.valid('header')['idempotency-key'] }
        : {}),
    })
    return c.json(deploymentView(row, ownerLabel(account)), 202)
  })

  router.openapi(listDeployments, async (c) => {
    const account = accountOf(c)
    const { items, total } = await deps.store.list(account.id, c.req.valid('query'))
    return c.json({ items: items.map((row) => deploymentView(row, ownerLabel(account))), total }, 200)
  })

  router.openapi(getDeployment, async (c) => {
    const account = accountOf(c)
    const row = await deps.store.get(account.id, c.req.valid('param').id)
    return c.json(deploymentView(row, ownerLabel(account)), 200)
  })

  for (const intent of ['stop', 'start', 'restart', 'delete'] as const) {
    router.openapi(intentRoute(intent), async (c) => {
      const account = accountOf(c)
      const { id } = c.req.valid('param')
      if (deps.nft && (intent === 'start' || intent === 'restart')) {
        // Only the token's holder may run it; the row answers 404 to anyone it does not belong to.
        await deps.nft.checkIntent(account, await deps.store.get(account.id, id), intent)
      }
      const row = await deps.store.requestIntent(account.id, id, intent)
      return c.json(deploymentView(row, ownerLabel(account)), 202)
    })
  }

  return router
}
