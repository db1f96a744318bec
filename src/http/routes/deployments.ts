import { createRoute, z } from '@hono/zod-openapi'
import type { DeploymentStore, Intent } from '../../control/deployment-store.ts'
import { invalidInput } from '../../domain/errors.ts'
import { statuses } from '../../domain/lifecycle.ts'
import { deploymentSpecSchema } from '../../domain/spec.ts'
import type { ProviderRegistry } from '../../providers/provider.ts'
import { createRouter } from '../openapi.ts'
import { accountOf, ownerLabel } from '../principal.ts'
import { deploymentSchema, errorResponses, errorSchema, idParam } from '../schemas.ts'
import { deploymentView } from '../views.ts'

export interface DeploymentRoutesDeps {
  store: DeploymentStore
  providers: ProviderRegistry
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
    409: json(errorSchema, 'Name taken, or Idempotency-Key reused with another body'),
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
      409: json(errorSchema, 'The deployment is being deleted'),
      ...errorResponses,
    },
  })

export function deploymentRoutes(deps: DeploymentRoutesDeps) {
  const router = createRouter()

  router.openapi(createDeployment, async (c) => {
    const account = accountOf(c)
    const spec = c.req.valid('json')
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
      const row = await deps.store.requestIntent(account.id, c.req.valid('param').id, intent)
      return c.json(deploymentView(row, ownerLabel(account)), 202)
    })
  }

  return router
}
