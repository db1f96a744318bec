import { createRoute, z } from '@hono/zod-openapi'
import type { Credentials } from '../../deployments/credentials.ts'
import type { Deployments } from '../../deployments/deployments.ts'
import { intents, statuses } from '../../domain/lifecycle.ts'
import {
  type DeploymentSpec,
  deploymentSpecSchema,
  deploymentSpecShapes,
  dnsLabel,
} from '../../domain/spec.ts'
import type { TemplateRequest } from '../../templates/render.ts'
import { createRouter } from '../openapi.ts'
import { principalOf } from '../principal.ts'
import { deploymentSchema, errorResponses, errorSchema, idParam, json } from '../schemas.ts'
import { deploymentView } from '../views.ts'

// Deployments: create, list, read, and the intents (stop, start, restart, delete). The routes
// parse and map; what is allowed is decided in deployments/.

/** A deployment from a catalog template (GET /v1/templates). */
const templateRequestSchema = z.strictObject({
  template: dnsLabel,
  size: dnsLabel.optional(),
  name: dnsLabel,
  params: z.record(z.string().max(63), z.unknown()).optional(),
})

/**
 * A spec, or a template request (told apart by its `template` key): each is checked by its own
 * schema, so a bad spec is answered about the spec's fields, never as "matches neither".
 */
const createBody = z
  .unknown()
  .transform((body, ctx) => {
    const isTemplate = typeof body === 'object' && body !== null && 'template' in body
    const parsed = (isTemplate ? templateRequestSchema : deploymentSpecSchema).safeParse(body)
    if (parsed.success)
      return isTemplate
        ? { template: parsed.data as TemplateRequest }
        : { spec: parsed.data as DeploymentSpec }
    for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, input: undefined } as never)
    return z.NEVER
  })
  .openapi({
    oneOf: [
      ...deploymentSpecShapes.map((shape) => z.toJSONSchema(shape, { io: 'input', unrepresentable: 'any' })),
      z.toJSONSchema(templateRequestSchema, { io: 'input' }),
    ],
  } as never)

const createDeployment = createRoute({
  method: 'post',
  path: '/v1/deployments',
  tags: ['deployments'],
  summary: 'Create a deployment',
  request: {
    headers: z.object({ 'idempotency-key': z.string().min(1).max(128).optional() }),
    body: { required: true, content: { 'application/json': { schema: createBody } } },
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

const credentialsSchema = z
  .object({ credentials: z.record(z.string(), z.string()), connection: z.record(z.string(), z.string()) })
  .openapi('Credentials')

const readCredentials = createRoute({
  method: 'get',
  path: '/v1/deployments/{id}/credentials',
  tags: ['deployments'],
  summary: "A template deployment's generated credentials and connection details (each read is audited)",
  request: { params: idParam },
  responses: {
    200: json(credentialsSchema, 'The credentials'),
    409: json(errorSchema, 'The deployment has no generated credentials'),
    ...errorResponses,
  },
})

const rotateCredentials = createRoute({
  method: 'post',
  path: '/v1/deployments/{id}/credentials/rotate',
  tags: ['deployments'],
  summary: 'New values for the rotatable credentials, set in the running service, and returned (audited)',
  request: { params: idParam },
  responses: {
    200: json(credentialsSchema, 'The credentials, the rotated ones new'),
    409: json(
      errorSchema,
      'Nothing to rotate, the deployment is not running, or its provider cannot run commands',
    ),
    422: json(errorSchema, 'The service refused the new value; the old one stays'),
    ...errorResponses,
  },
})

const usageNumbers = z.object({
  cpuPercent: z.number(),
  memoryBytes: z.number(),
  networkRxBytes: z.number(),
  networkTxBytes: z.number(),
})
const usageSchema = usageNumbers
  .extend({ services: z.record(z.string(), usageNumbers).optional() })
  .openapi('Usage')

const readUsage = createRoute({
  method: 'get',
  path: '/v1/deployments/{id}/usage',
  tags: ['deployments'],
  summary: "What the deployment's instances use now, in all and per service",
  request: { params: idParam },
  responses: {
    200: json(usageSchema, 'CPU (percent of one CPU), memory and network bytes'),
    503: json(errorSchema, "The deployment's provider does not answer"),
    ...errorResponses,
  },
})

export function deploymentRoutes(deployments: Deployments, credentials: Credentials) {
  const router = createRouter()

  router.openapi(readUsage, async (c) =>
    c.json(await deployments.usage(principalOf(c), c.req.valid('param').id), 200),
  )

  router.openapi(readCredentials, async (c) => {
    // Never kept by a cache on the way: they are secrets.
    c.header('cache-control', 'no-store')
    return c.json(await credentials.read(principalOf(c), c.req.valid('param').id), 200)
  })

  router.openapi(rotateCredentials, async (c) => {
    c.header('cache-control', 'no-store')
    return c.json(await credentials.rotate(principalOf(c), c.req.valid('param').id), 200)
  })

  router.openapi(createDeployment, async (c) => {
    const idempotencyKey = c.req.valid('header')['idempotency-key']
    const body = c.req.valid('json')
    const options = idempotencyKey ? { idempotencyKey } : {}
    const row = body.template
      ? await deployments.createFromTemplate(principalOf(c), body.template, options)
      : await deployments.create(principalOf(c), body.spec!, options)
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
