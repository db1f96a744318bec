import { createRoute, z } from '@hono/zod-openapi'
import type { Deployments } from '../../deployments/deployments.ts'
import { intents, statuses } from '../../domain/lifecycle.ts'
import { deploymentSpecSchema } from '../../domain/spec.ts'
import { createRouter } from '../openapi.ts'
import { principalOf } from '../principal.ts'
import { deploymentSchema, errorResponses, errorSchema, idParam, json } from '../schemas.ts'
import { deploymentView } from '../views.ts'

// Deployments: create, list, read, and the intents (stop, start, restart, delete). The routes
// parse and map; what is allowed is decided in deployments/.

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

const intentRoute = (intent: (typeof intents)[number]) =>
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

export function deploymentRoutes(deployments: Deployments) {
  const router = createRouter()

  router.openapi(createDeployment, async (c) => {
    const idempotencyKey = c.req.valid('header')['idempotency-key']
    const row = await deployments.create(principalOf(c), c.req.valid('json'), {
      ...(idempotencyKey ? { idempotencyKey } : {}),
    })
    return c.json(deploymentView(row, principalOf(c)), 202)
  })

  router.openapi(listDeployments, async (c) => {
    const { items, total } = await deployments.list(principalOf(c), c.req.valid('query'))
    const places = await deployments.queuePlaces(items)
    return c.json(
      { items: items.map((row) => deploymentView(row, principalOf(c), places.get(row.id))), total },
      200,
    )
  })

  router.openapi(getDeployment, async (c) => {
    const row = await deployments.get(principalOf(c), c.req.valid('param').id)
    const places = await deployments.queuePlaces([row])
    return c.json(deploymentView(row, principalOf(c), places.get(row.id)), 200)
  })

  for (const intent of intents) {
    router.openapi(intentRoute(intent), async (c) => {
      const row = await deployments.requestIntent(principalOf(c), c.req.valid('param').id, intent)
      return c.json(deploymentView(row, principalOf(c)), 202)
    })
  }

  return router
}
