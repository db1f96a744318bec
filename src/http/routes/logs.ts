import { createRoute, z } from '@hono/zod-openapi'
import type { Hono } from 'hono'
import { stream, streamSSE } from 'hono/streaming'
import type { UpgradeWebSocket } from 'hono/ws'
import type { Logger } from 'pino'
import type { Deployments } from '../../deployments/deployments.ts'
import { describeIssues, invalidInput, summarizeIssues } from '../../domain/errors.ts'
import { dnsLabel } from '../../domain/spec.ts'
import type { LogLine } from '../../providers/provider.ts'
import type { AppEnv } from '../context.ts'
import { createRouter } from '../openapi.ts'
import { principalOf } from '../principal.ts'
import { errorResponses, errorSchema, idParam, json } from '../schemas.ts'
import type { StreamGuard } from '../streams.ts'
import { mountStreamSocket } from './socket.ts'

// A deployment's logs, three ways: plain text lines (`<time> <stream> <text>`), Server-Sent
// Events (`Accept: text/event-stream`, one JSON `{at, stream, text}` per event) and a WebSocket
// (`/v1/deployments/{id}/logs/ws`, one JSON line per message). Same query everywhere.

/**
 * What a failure in the middle of a log stream tells the reader: the status line is sent by then,
 * so this is all they learn, and internal detail stays in the server's log.
 */
const STREAM_FAILED = 'the log stream broke off; read it again'

const logQuery = z.object({
  tail: z.coerce.number().int().min(0).max(10_000).default(100),
  follow: z.enum(['0', '1', 'true', 'false']).optional(),
  /** One service's lines, on a multi-service deployment. */
  service: dnsLabel.optional(),
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
    503: json(errorSchema, "The deployment's provider does not answer"),
  },
})

export const formatLogLine = (line: LogLine) => `${line.at.toISOString()} ${line.stream} ${line.text}\n`
const logLineView = (line: LogLine) => ({ at: line.at.toISOString(), stream: line.stream, text: line.text })
const following = (follow: string | undefined) => follow === '1' || follow === 'true'

export function logRoutes(deployments: Deployments, streams: StreamGuard, logger: Logger) {
  const router = createRouter()
  router.openapi(getLogs, async (c) => {
    const { tail, follow, service } = c.req.valid('query')
    const { id } = c.req.valid('param')
    const held = streams.open(c, id)
    const abort = new AbortController()
    held.signal.addEventListener('abort', () => abort.abort(), { once: true })
    let lines: AsyncIterable<LogLine>
    try {
      // Opened before the response starts: an unknown deployment is a 404, a provider outage a 503.
      lines = await deployments.logs(principalOf(c), id, {
        tail,
        follow: following(follow),
        signal: abort.signal,
        ...(service ? { service } : {}),
      })
    } catch (error) {
      held.release()
      throw error
    }
    if ((c.req.header('accept') ?? '').includes('text/event-stream')) {
      return streamSSE(c, async (out) => {
        out.onAbort(() => abort.abort())
        try {
          for await (const line of lines) {
            await out.writeSSE({ event: 'log', data: JSON.stringify(logLineView(line)) })
          }
        } catch (error) {
          if (abort.signal.aborted) return
          logger.warn({ err: error, requestId: c.get('requestId') }, 'log stream failed')
          await out.writeSSE({ event: 'error', data: JSON.stringify({ message: STREAM_FAILED }) })
        } finally {
          held.release()
        }
      }) as never
    }
    c.header('content-type', 'text/plain; charset=utf-8')
    c.header('cache-control', 'no-cache')
    return stream(c, async (out) => {
      out.onAbort(() => abort.abort())
      try {
        for await (const line of lines) await out.write(formatLogLine(line))
      } finally {
        held.release()
      }
    }) as never
  })
  return router
}

/**
 * `GET /v1/deployments/{id}/logs/ws?tail=&follow=`: one JSON `{at, stream, text}` per message;
 * the socket closes (1000) when a log without `follow` has been sent.
 */
export function mountLogSocket(
  app: Hono<AppEnv>,
  upgradeWebSocket: UpgradeWebSocket<unknown>,
  deps: { deployments: Deployments; streams: StreamGuard },
): void {
  mountStreamSocket(app, upgradeWebSocket, deps, '/v1/deployments/:id/logs/ws', {
    validate(c) {
      const params = idParam.safeParse({ id: c.req.param('id') })
      const query = logQuery.safeParse(c.req.query())
      const issues = [
        ...(params.success ? [] : describeIssues(params.error.issues)),
        ...(query.success ? [] : describeIssues(query.error.issues)),
      ]
      if (issues.length > 0) throw invalidInput(`invalid request: ${summarizeIssues(issues)}`, issues)
    },
    async run(c, send, signal) {
      const { tail, follow, service } = logQuery.parse(c.req.query())
      const lines = await deps.deployments.logs(principalOf(c), c.req.param('id')!, {
        tail,
        follow: following(follow),
        signal,
        ...(service ? { service } : {}),
      })
      for await (const line of lines) send(JSON.stringify(logLineView(line)))
    },
    endReason: 'end of log',
  })
}
