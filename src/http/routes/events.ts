import { createRoute, z } from '@hono/zod-openapi'
import { streamSSE } from 'hono/streaming'
import type { Deployments } from '../../deployments/deployments.ts'
import { createRouter } from '../openapi.ts'
import { principalOf } from '../principal.ts'
import { errorResponses, eventSchema, idParam } from '../schemas.ts'
import type { StreamGuard } from '../streams.ts'
import { eventView } from '../views.ts'

export interface EventRoutesDeps {
  deployments: Deployments
  streams: StreamGuard
  keepaliveMs?: number
}

const listEvents = createRoute({
  method: 'get',
  path: '/v1/deployments/{id}/events',
  tags: ['events'],
  summary: 'Events of a deployment; Server-Sent Events with Accept: text/event-stream or ?follow=1',
  request: {
    params: idParam,
    query: z.object({
      follow: z.enum(['0', '1', 'true', 'false']).optional(),
      after: z.coerce.number().int().min(0).optional(),
      limit: z.coerce.number().int().min(1).max(1000).default(1000),
    }),
  },
  responses: {
    200: {
      description: 'Events in order; or an SSE stream (`id` = seq, `event: deployment`)',
      content: {
        'application/json': { schema: z.object({ items: z.array(eventSchema) }) },
        'text/event-stream': { schema: z.string() },
      },
    },
    ...errorResponses,
  },
})

/** `Last-Event-ID` (SSE reconnect) wins over `?after=`; both mean "events after this seq". */
export function resumeFrom(lastEventId: string | undefined, after: number | undefined): number {
  const parsed = lastEventId !== undefined ? Number.parseInt(lastEventId, 10) : Number.NaN
  return Number.isFinite(parsed) && parsed >= 0 ? parsed : (after ?? 0)
}

export function eventRoutes(deps: EventRoutesDeps) {
  const router = createRouter()
  const keepaliveMs = deps.keepaliveMs ?? 15_000

  router.openapi(listEvents, async (c) => {
    const { id } = c.req.valid('param')
    const query = c.req.valid('query')
    const after = resumeFrom(c.req.header('last-event-id'), query.after)
    const follow =
      query.follow === '1' ||
      query.follow === 'true' ||
      (c.req.header('accept') ?? '').includes('text/event-stream')
    if (!follow) {
      const items = await deps.deployments.events(principalOf(c), id, after, query.limit)
      return c.json({ items: items.map(eventView) }, 200)
    }
    // Opened before the response starts, so someone else's deployment is a plain 404.
    const abort = new AbortController()
    const events = await deps.deployments.followEvents(principalOf(c), id, after, abort.signal)
    const held = deps.streams.open(c, id)
    held.signal.addEventListener('abort', () => abort.abort(), { once: true })
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => abort.abort())
      const keepalive = setInterval(
        () => void stream.write(': keepalive\n\n').catch(() => abort.abort()),
        keepaliveMs,
      )
      try {
        for await (const event of events) {
          await stream.writeSSE({
            id: String(event.seq),
            event: 'deployment',
            data: JSON.stringify(eventView(event)),
          })
        }
      } finally {
        clearInterval(keepalive)
        held.release()
      }
    }) as never
  })

  return router
}
