import { createRoute, z } from '@hono/zod-openapi'
import type { Hono } from 'hono'
import { stream, streamSSE } from 'hono/streaming'
import type { UpgradeWebSocket } from 'hono/ws'
import type { DeploymentStore } from '../../control/deployment-store.ts'
import { describeIssues, invalidInput, summarizeIssues } from '../../domain/errors.ts'
import type { LogLine, ProviderRegistry } from '../../providers/provider.ts'
import type { AppEnv } from '../context.ts'
import { createRouter } from '../openapi.ts'
import { accountOf } from '../principal.ts'
import { errorResponses, idParam } from '../schemas.ts'

// A deployment's logs, three ways: plain text lines (`<time> <stream> <text>`), Server-Sent
// Events (`Accept: text/event-stream`, one JSON `{at, stream, text}` per event) and a WebSocket
// (`/v1/deployments/{id}/logs/ws`, one JSON line per message). Same query everywhere.

export interface LogRoutesDeps {
  store: DeploymentStore
  providers: ProviderRegistry
}

const logQuery = z.object({
  tail: z.coerce.number().int().min(0).max(10_000).default(100),
  follow: z.enum(['0', '1', 'true', 'false']).optional(),
})

const getLogs = createRoute({
  method: 'get',
  path: '/v1/deployments/{id}/logs',
  tags: ['logs'],
  summary: 'Log lines; streamed while following; SSE with Accept: text/event-stream',
  request: { params: idParam, query: logQuery },
  responses: {
    200: {
      description: 'Log lines (`<time> <stream> <text>`), or SSE events with `{at, stream, text}`',
      content: { 'text/plain': { schema: z.string() }, 'text/event-stream': { schema: z.string() } },
    },
    ...errorResponses,
  },
})

export const formatLogLine = (line: LogLine) => `${line.at.toISOString()} ${line.stream} ${line.text}\n`
const logLineView = (line: LogLine) => ({ at: line.at.toISOString(), stream: line.stream, text: line.text })
const following = (follow: string | undefined) => follow === '1' || follow === 'true'

export function logRoutes(deps: LogRoutesDeps) {
  const router = createRouter()
  router.openapi(getLogs, async (c) => {
    const account = accountOf(c)
    const row = await deps.store.get(account.id, c.req.valid('param').id)
    const { tail, follow } = c.req.valid('query')
    const provider = deps.providers.get(row.provider)
    const options = { tail, follow: following(follow) }
    if ((c.req.header('accept') ?? '').includes('text/event-stream')) {
      return streamSSE(c, async (out) => {
        if (!provider) return
        const abort = new AbortController()
        out.onAbort(() => abort.abort())
        try {
          for await (const line of provider.logs(row.id, { ...options, signal: abort.signal })) {
            await out.writeSSE({ event: 'log', data: JSON.stringify(logLineView(line)) })
          }
        } catch (error) {
          // Headers are sent: the failure can only be told in the stream.
          if (!abort.signal.aborted) {
            await out.writeSSE({
              event: 'error',
              data: JSON.stringify({ message: (error as Error).message }),
            })
          }
        }
      }) as never
    }
    c.header('content-type', 'text/plain; charset=utf-8')
    c.header('cache-control', 'no-cache')
    return stream(c, async (out) => {
      if (!provider) return
      const abort = new AbortController()
      out.onAbort(() => abort.abort())
      for await (const line of provider.logs(row.id, { ...options, signal: abort.signal })) {
        await out.write(formatLogLine(line))
      }
    }) as never
  })
  return router
}

/**
 * `GET /v1/deployments/{id}/logs/ws?tail=&follow=`: one JSON `{at, stream, text}` per message;
 * the socket closes (1000) when a log without `follow` has been sent. `?access_token=` works as for
 * the event socket, since browsers cannot set headers on a WebSocket.
 */
export function mountLogSocket(
  app: Hono<AppEnv>,
  upgradeWebSocket: UpgradeWebSocket<unknown>,
  deps: LogRoutesDeps,
): void {
  app.get(
    '/v1/deployments/:id/logs/ws',
    async (c, next) => {
      // Validated, and ownership checked, before the upgrade: bad input gets a plain 400 or 404.
      const params = idParam.safeParse({ id: c.req.param('id') })
      const query = logQuery.safeParse(c.req.query())
      const issues = [
        ...(params.success ? [] : describeIssues(params.error.issues)),
        ...(query.success ? [] : describeIssues(query.error.issues)),
      ]
      if (issues.length > 0) throw invalidInput(`invalid request: ${summarizeIssues(issues)}`, issues)
      await deps.store.get(accountOf(c).id, c.req.param('id'))
      await next()
    },
    upgradeWebSocket((c) => {
      const id = c.req.param('id')!
      const { tail, follow } = logQuery.parse(c.req.query())
      const abort = new AbortController()
      return {
        onOpen: (_event, ws) => {
          void (async () => {
            try {
              const row = await deps.store.get(accountOf(c).id, id)
              const provider = deps.providers.get(row.provider)
              if (provider) {
                const lines = provider.logs(id, { tail, follow: following(follow), signal: abort.signal })
                for await (const line of lines) ws.send(JSON.stringify(logLineView(line)))
              }
              ws.close(1000, 'end of log')
            } catch {
              if (!abort.signal.aborted) ws.close(1011, 'log stream failed')
            }
          })()
        },
        onClose: () => abort.abort(),
        onError: () => abort.abort(),
      }
    }),
  )
}
