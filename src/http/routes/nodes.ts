import { createRoute, z } from '@hono/zod-openapi'
import { forbidden } from '../../domain/errors.ts'
import type { NodeSchedulingState } from '../../domain/node.ts'
import type { Earnings } from '../../fleet/earnings.ts'
import type { NodeDetail, Nodes, NodeView } from '../../fleet/nodes.ts'
import { createRouter } from '../openapi.ts'
import { accountOf, principalOf, sourceOfRequest } from '../principal.ts'
import { errorResponses, idParam, json } from '../schemas.ts'

// Fleet nodes: the operator sees, cordons, drains and removes any of them; a node operator sees
// their own (`/v1/my/nodes`).

const resources = z
  .object({
    milliCpus: z.number(),
    memoryMb: z.number(),
    diskMb: z.number(),
    gpus: z.array(z.object({ model: z.string(), count: z.number() })),
  })
  .nullable()

const nodeSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    operator: z.string(),
    status: z.enum(['online', 'lost', 'cordoned', 'draining']),
    connectivity: z.enum(['online', 'lost']),
    scheduling: z.enum(['active', 'cordoned', 'draining']),
    labels: z.record(z.string(), z.string()),
    capacity: resources,
    allocatable: resources,
    agentVersion: z.string().nullable(),
    instances: z.array(z.object({ deploymentId: z.string(), replica: z.number(), state: z.string() })),
    lastSeenAt: z.string(),
    lostAt: z
      .string()
      .nullable()
      .openapi({ description: 'When the node was last found lost (kept after it returns); null if never' }),
    enrolledAt: z.string(),
    uptimePercent: z.object({ '24h': z.number(), '7d': z.number(), '30d': z.number() }),
  })
  .openapi('Node')
const nodeDetailSchema = nodeSchema
  .extend({
    sessions: z.array(z.object({ startedAt: z.string(), lastSeenAt: z.string() })),
    reservations: z.array(
      z.object({
        deploymentId: z.string(),
        replica: z.number(),
        milliCpus: z.number(),
        memoryMb: z.number(),
        diskMb: z.number(),
        gpus: z.number(),
        placedAt: z.string(),
        reason: z.string(),
      }),
    ),
  })
  .openapi('NodeDetail')
const nodeList = z.object({ items: z.array(nodeSchema) })

const nodeOf = (view: NodeView) => ({
  ...view,
  lastSeenAt: view.lastSeenAt.toISOString(),
  lostAt: view.lostAt?.toISOString() ?? null,
  enrolledAt: view.enrolledAt.toISOString(),
})
const detailOf = (detail: NodeDetail) => ({
  ...nodeOf(detail),
  sessions: detail.sessions.map((s) => ({
    startedAt: s.startedAt.toISOString(),
    lastSeenAt: s.lastSeenAt.toISOString(),
  })),
  reservations: detail.reservations.map((r) => ({ ...r, placedAt: r.placedAt.toISOString() })),
})

const action = (path: string, summary: string) =>
  createRoute({
    method: 'post',
    path: `/v1/nodes/{id}/${path}`,
    tags: ['fleet'],
    summary: `${summary} (operator token only)`,
    request: { params: idParam },
    responses: { 200: json(nodeDetailSchema, 'The node'), ...errorResponses },
  })

const routes = {
  list: createRoute({
    method: 'get',
    path: '/v1/nodes',
    tags: ['fleet'],
    summary: 'Every fleet node (operator token only)',
    responses: { 200: json(nodeList, 'Nodes'), ...errorResponses },
  }),
  get: createRoute({
    method: 'get',
    path: '/v1/nodes/{id}',
    tags: ['fleet'],
    summary: 'A node with its uptime sessions (the operator, or the wallet that runs it)',
    request: { params: idParam },
    responses: { 200: json(nodeDetailSchema, 'The node'), ...errorResponses },
  }),
  cordon: action('cordon', 'Give the node no new replicas'),
  uncordon: action('uncordon', 'Let the node take new replicas again'),
  drain: action('drain', 'Move its replicas to other nodes, then cordon it'),
  remove: createRoute({
    method: 'delete',
    path: '/v1/nodes/{id}',
    tags: ['fleet'],
    summary: 'Take a node out of the fleet (operator token only; refused while it runs replicas)',
    request: { params: idParam },
    responses: { 204: { description: 'Removed' }, ...errorResponses },
  }),
  earnings: createRoute({
    method: 'get',
    path: '/v1/my/nodes/earnings',
    tags: ['fleet'],
    summary:
      "What the caller's nodes earned (micro-USD): the payable balance, and per node what was earned and what low uptime forfeited",
    responses: {
      200: json(
        z
          .object({
            payableMicroUsd: z.string(),
            nodes: z.array(
              z.object({
                id: z.string(),
                name: z.string(),
                earnedMicroUsd: z.string(),
                forfeitedMicroUsd: z.string(),
                intervalsEarned: z.number(),
                intervalsForfeited: z.number(),
              }),
            ),
          })
          .openapi('NodeEarnings'),
        'Earnings',
      ),
      ...errorResponses,
    },
  }),
  mine: createRoute({
    method: 'get',
    path: '/v1/my/nodes',
    tags: ['fleet'],
    summary: "The caller's own fleet nodes (those its wallet enrolled)",
    responses: { 200: json(nodeList, 'Nodes'), ...errorResponses },
  }),
}

export function nodeRoutes(nodes: Nodes, earnings: Pick<Earnings, 'of'>) {
  const router = createRouter()
  const operatorOnly = (kind: string) => {
    if (kind !== 'admin') throw forbidden('managing fleet nodes needs the operator admin token')
  }
  router.openapi(routes.list, async (c) => {
    operatorOnly(principalOf(c).kind)
    return c.json({ items: (await nodes.list()).map(nodeOf) }, 200)
  })
  router.openapi(routes.get, async (c) => {
    const { id } = c.req.valid('param')
    // A node operator sees their own node; anyone else gets 404, as if it did not exist.
    const operatorId = principalOf(c).kind === 'admin' ? undefined : accountOf(c).id
    return c.json(detailOf(await nodes.get(id, operatorId)), 200)
  })
  const schedulingRoutes: Array<[typeof routes.cordon, NodeSchedulingState]> = [
    [routes.cordon, 'cordoned'],
    [routes.uncordon, 'active'],
    [routes.drain, 'draining'],
  ]
  for (const [route, scheduling] of schedulingRoutes) {
    router.openapi(route, async (c) => {
      operatorOnly(principalOf(c).kind)
      const { id } = c.req.valid('param')
      return c.json(detailOf(await nodes.setScheduling(id, scheduling, sourceOfRequest(c))), 200)
    })
  }
  router.openapi(routes.remove, async (c) => {
    operatorOnly(principalOf(c).kind)
    await nodes.remove(c.req.valid('param').id, sourceOfRequest(c))
    return c.body(null, 204)
  })
  router.openapi(routes.earnings, async (c) => c.json(await earnings.of(accountOf(c).id), 200))
  router.openapi(routes.mine, async (c) => {
    return c.json({ items: (await nodes.listOfOperator(accountOf(c).id)).map(nodeOf) }, 200)
  })
  return router
}
