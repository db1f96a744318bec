import { createRoute, z } from '@hono/zod-openapi'
import type { Notify } from '../../notify/notify.ts'
import { channelInput, channelPatch, webhookInput, webhookPatch } from '../../notify/target-inputs.ts'
import type { Family } from '../../notify/target-view.ts'
import { createRouter } from '../openapi.ts'
import { principalOf } from '../principal.ts'
import { errorResponses, errorSchema, idParam, json, jsonBody } from '../schemas.ts'

// An owner's webhooks (/v1/webhooks) and chat and email channels (/v1/notification-channels):
// the same operations on both, besides what only one has (a webhook's signing secret, an email
// channel's confirmation code). A webhook's secret is shown when made or rotated, never again.

const targetSchema = z
  .object({
    id: z.string(),
    kind: z.enum(['webhook', 'email', 'slack', 'discord', 'telegram']),
    shown: z.string().describe("The webhook's URL, the email address, a chat URL's host: never a token"),
    description: z.string(),
    eventTypes: z.array(z.string()),
    enabled: z.boolean(),
    disabledReason: z
      .string()
      .nullable()
      .describe('gone (it answered 410) or failing (a whole retry schedule failed)'),
    verified: z.boolean(),
    previousSecretValidUntil: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('NotifyTarget')

const withSecret = z
  .intersection(targetSchema, z.object({ secret: z.string().describe('whsec_…: shown this once') }))
  .openapi('WebhookWithSecret')

const deliverySchema = z
  .object({
    id: z.string(),
    eventId: z.string(),
    eventType: z.string(),
    state: z.enum(['pending', 'succeeded', 'failed', 'cancelled']),
    attempts: z.number().int(),
    statusCode: z.number().int().nullable(),
    latencyMs: z.number().int().nullable(),
    error: z.string().nullable(),
    lastAttemptAt: z.string().nullable(),
    nextAttemptAt: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi('Delivery')

const deliveryParams = z.object({
  id: z.uuid().openapi({ param: { name: 'id', in: 'path' } }),
  deliveryId: z.uuid().openapi({ param: { name: 'deliveryId', in: 'path' } }),
})

function routesFor(family: Family, base: string, tag: string) {
  const common = { tags: [tag] }
  return {
    list: createRoute({
      ...common,
      method: 'get',
      path: base,
      summary: `The owner's ${family}s`,
      responses: { 200: json(z.object({ items: z.array(targetSchema) }), 'The list'), ...errorResponses },
    }),
    get: createRoute({
      ...common,
      method: 'get',
      path: `${base}/{id}`,
      summary: `One ${family}`,
      request: { params: idParam },
      responses: { 200: json(targetSchema, family), ...errorResponses },
    }),
    remove: createRoute({
      ...common,
      method: 'delete',
      path: `${base}/{id}`,
      summary: `Deletes a ${family} (what waits to be delivered there is cancelled)`,
      request: { params: idParam },
      responses: { 204: { description: 'Deleted' }, ...errorResponses },
    }),
    test: createRoute({
      ...common,
      method: 'post',
      path: `${base}/{id}/test`,
      summary: `Sends a webhook.test event to this ${family} alone`,
      request: { params: idParam },
      responses: { 202: json(z.object({ eventType: z.string() }), 'Queued'), ...errorResponses },
    }),
    deliveries: createRoute({
      ...common,
      method: 'get',
      path: `${base}/{id}/deliveries`,
      summary: `The delivery log of a ${family}, newest first`,
      request: {
        params: idParam,
        query: z.object({
          before: z
            .uuid()
            .optional()
            .openapi({ description: 'The id of the last delivery of the previous page' }),
          limit: z.coerce.number().int().min(1).max(500).default(100),
        }),
      },
      responses: { 200: json(z.object({ items: z.array(deliverySchema) }), 'Deliveries'), ...errorResponses },
    }),
    retry: createRoute({
      ...common,
      method: 'post',
      path: `${base}/{id}/deliveries/{deliveryId}/retry`,
      summary: 'Tries a delivery again now (one that failed starts a fresh schedule)',
      request: { params: deliveryParams },
      responses: {
        202: json(z.object({ retrying: z.literal(true) }), 'Queued'),
        409: json(errorSchema, 'The delivery succeeded already'),
        ...errorResponses,
      },
    }),
  }
}

function mountCommon(
  router: ReturnType<typeof createRouter>,
  notify: Notify,
  family: Family,
  base: string,
  tag: string,
) {
  const r = routesFor(family, base, tag)
  router.openapi(r.list, async (c) =>
    c.json({ items: await notify.targets.list(principalOf(c), family) }, 200),
  )
  router.openapi(r.get, async (c) =>
    c.json(await notify.targets.get(principalOf(c), family, c.req.valid('param').id), 200),
  )
  router.openapi(r.remove, async (c) => {
    await notify.targets.remove(principalOf(c), family, c.req.valid('param').id)
    return c.body(null, 204)
  })
  router.openapi(r.test, async (c) => {
    const queued = await notify.targets.test(principalOf(c), family, c.req.valid('param').id)
    void notify.publish()
    return c.json(queued, 202)
  })
  router.openapi(r.deliveries, async (c) => {
    const { before, limit } = c.req.valid('query')
    const items = await notify.deliveries(principalOf(c), family, c.req.valid('param').id, {
      ...(before ? { before } : {}),
      limit,
    })
    return c.json({ items }, 200)
  })
  router.openapi(r.retry, async (c) => {
    const { id, deliveryId } = c.req.valid('param')
    await notify.retryDelivery(principalOf(c), family, id, deliveryId)
    return c.json({ retrying: true as const }, 202)
  })
}

export function webhookRoutes(notify: Notify) {
  const router = createRouter()
  const tag = 'webhooks'
  router.openapi(
    createRoute({
      tags: [tag],
      method: 'post',
      path: '/v1/webhooks',
      summary: 'Adds a webhook; its signing secret (whsec_…) is in this answer only',
      request: { body: jsonBody(webhookInput) },
      responses: { 201: json(withSecret, 'The webhook and its secret'), ...errorResponses },
    }),
    async (c) => c.json(await notify.targets.createWebhook(principalOf(c), c.req.valid('json')), 201),
  )
  router.openapi(
    createRoute({
      tags: [tag],
      method: 'patch',
      path: '/v1/webhooks/{id}',
      summary: 'Changes a webhook (enabling one berth turned off forgets why)',
      request: { params: idParam, body: jsonBody(webhookPatch) },
      responses: { 200: json(targetSchema, 'The webhook'), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await notify.targets.update(principalOf(c), 'webhook', c.req.valid('param').id, c.req.valid('json')),
        200,
      ),
  )
  router.openapi(
    createRoute({
      tags: [tag],
      method: 'post',
      path: '/v1/webhooks/{id}/rotate-secret',
      summary: 'A new signing secret; the old one still signs (a second signature) for 24 hours',
      request: { params: idParam },
      responses: { 200: json(withSecret, 'The webhook and its new secret'), ...errorResponses },
    }),
    async (c) => c.json(await notify.targets.rotateSecret(principalOf(c), c.req.valid('param').id), 200),
  )
  mountCommon(router, notify, 'webhook', '/v1/webhooks', tag)
  return router
}

export function channelRoutes(notify: Notify) {
  const router = createRouter()
  const tag = 'notifications'
  const base = '/v1/notification-channels'
  router.openapi(
    createRoute({
      tags: [tag],
      method: 'post',
      path: base,
      summary:
        'Adds an email, Slack, Discord or Telegram channel (an email address is sent a code to confirm first)',
      request: { body: jsonBody(channelInput) },
      responses: {
        201: json(targetSchema, 'The channel'),
        503: json(errorSchema, 'The confirmation email could not be sent'),
        ...errorResponses,
      },
    }),
    async (c) => c.json(await notify.targets.createChannel(principalOf(c), c.req.valid('json')), 201),
  )
  router.openapi(
    createRoute({
      tags: [tag],
      method: 'patch',
      path: `${base}/{id}`,
      summary: 'Changes a channel',
      request: { params: idParam, body: jsonBody(channelPatch) },
      responses: { 200: json(targetSchema, 'The channel'), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await notify.targets.update(principalOf(c), 'channel', c.req.valid('param').id, c.req.valid('json')),
        200,
      ),
  )
  router.openapi(
    createRoute({
      tags: [tag],
      method: 'post',
      path: `${base}/{id}/verify`,
      summary: 'Confirms an email channel with the code sent to it',
      request: { params: idParam, body: jsonBody(z.strictObject({ code: z.string().min(1).max(32) })) },
      responses: { 200: json(targetSchema, 'The channel, verified'), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await notify.targets.verify(principalOf(c), c.req.valid('param').id, c.req.valid('json').code),
        200,
      ),
  )
  mountCommon(router, notify, 'channel', base, tag)
  return router
}
