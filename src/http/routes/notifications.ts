import { createRoute, z } from '@hono/zod-openapi'
import { invalidInput } from '../../domain/errors.ts'
import { hiddenEventTypes } from '../../notify/inbox.ts'
import type { Notify } from '../../notify/notify.ts'
import { eventEnvelopeSchema, eventTypeSchema } from '../event-schemas.ts'
import { createRouter } from '../openapi.ts'
import { accountOf, principalOf } from '../principal.ts'
import { errorResponses, json, jsonBody } from '../schemas.ts'

// What an owner reads of what happened: its events for pull consumers (GET /v1/events, paged by a
// cursor that never skips one), and its in-app notifications with their read marks.

const limit = z.coerce.number().int().min(1).max(500).default(100)

const listEvents = createRoute({
  method: 'get',
  path: '/v1/events',
  tags: ['notifications'],
  summary: "The owner's events, oldest first after the cursor (the same envelope webhooks carry)",
  request: {
    query: z.object({
      types: z
        .string()
        .max(2000)
        .optional()
        .openapi({ description: 'Comma-separated event types; absent: all' }),
      cursor: z.coerce
        .number()
        .int()
        .min(0)
        .max(Number.MAX_SAFE_INTEGER)
        .optional()
        .openapi({ description: 'The cursor of the previous page; absent: from the beginning' }),
      limit,
    }),
  },
  responses: {
    200: json(
      z.object({
        items: z.array(z.intersection(eventEnvelopeSchema, z.object({ position: z.number().int() }))),
        cursor: z.number().int().describe('Give it back to read what came after this page'),
      }),
      'Events',
    ),
    ...errorResponses,
  },
})

const notificationSchema = z
  .object({
    id: z.string(),
    type: z.string(),
    message: z.string(),
    deploymentId: z.string().nullable(),
    eventId: z.string().nullable(),
    data: z.unknown().optional(),
    read: z.boolean(),
    createdAt: z.string(),
  })
  .openapi('Notification')

const listNotifications = createRoute({
  method: 'get',
  path: '/v1/notifications',
  tags: ['notifications'],
  summary: "The owner's notifications, newest first, with how many are unread",
  request: {
    query: z.object({
      unread: z.enum(['0', '1', 'true', 'false']).optional().openapi({ description: 'Only unread ones' }),
      before: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
      limit,
    }),
  },
  responses: {
    200: json(z.object({ items: z.array(notificationSchema), unread: z.number().int() }), 'Notifications'),
    ...errorResponses,
  },
})

const markRead = createRoute({
  method: 'post',
  path: '/v1/notifications/read',
  tags: ['notifications'],
  summary: 'Marks notifications read: the ones listed, or all of them',
  request: {
    body: jsonBody(
      z.strictObject({
        ids: z
          .array(z.string().regex(/^\d{1,18}$/, 'must be a notification id'))
          .min(1)
          .max(500)
          .optional()
          .openapi({ description: 'Absent: every notification of the owner' }),
      }),
    ),
  },
  responses: { 200: json(z.object({ marked: z.number().int() }), 'How many were marked'), ...errorResponses },
})

const truthy = (v: string | undefined) => v === '1' || v === 'true'

const hiddenFor = (c: Parameters<typeof principalOf>[0]) => hiddenEventTypes(principalOf(c))

export function notificationRoutes(notify: Notify) {
  const router = createRouter()
  router.openapi(listEvents, async (c) => {
    const query = c.req.valid('query')
    const types = query.types
      ?.split(',')
      .map((t) => t.trim())
      .filter(Boolean)
    const unknown = types?.find((t) => !eventTypeSchema.safeParse(t).success)
    if (unknown !== undefined)
      throw invalidInput(`types: ${JSON.stringify(unknown.slice(0, 64))} is not an event type`)
    const page = await notify.inbox.events(accountOf(c).id, {
      ...(types ? { types } : {}),
      ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
      limit: query.limit,
      hidden: hiddenFor(c),
    })
    return c.json(page as never, 200)
  })
  router.openapi(listNotifications, async (c) => {
    const query = c.req.valid('query')
    const page = await notify.inbox.notifications(accountOf(c).id, {
      unread: truthy(query.unread),
      ...(query.before ? { before: query.before } : {}),
      limit: query.limit,
      hidden: hiddenFor(c),
    })
    return c.json(page, 200)
  })
  router.openapi(markRead, async (c) => {
    const marked = await notify.inbox.markRead(accountOf(c).id, c.req.valid('json').ids, hiddenFor(c))
    return c.json({ marked }, 200)
  })
  return router
}
