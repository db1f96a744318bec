import { createRoute, z } from '@hono/zod-openapi'
import { stream } from 'hono/streaming'
import type { DeploymentStore } from '../../control/deployment-store.ts'
import type { LogLine, ProviderRegistry } from '../../providers/provider.ts'
import { createRouter } from '../openapi.ts'
import { accountOf } from '../principal.ts'
import { errorResponses, idParam } from '../schemas.ts'

export interface LogRoutesDeps {
  store: DeploymentStore
  providers: ProviderRegistry
}

const getLogs = createRoute({
  method: 'get',
  path: '/v1/deployments/{id}/logs',
  tags: ['logs'],
  summary: 'Log lines (`<time> <stream> <text>`); streamed while following',
  request: {
    params: idParam,
    query: z.object({
      tail: z.coerce.number().int().min(0).max(10_000).default(100),
      follow: z.enum(['0', '1', 'true', 'false']).optional(),
    }),
  },
  responses: {
    200: { description: 'Log lines', content: { 'text/plain': { schema: z.string() } } },
    ...errorResponses,
  },
})

export const formatLogLine = (line: LogLine) => `${line.at.toISOString()} ${line.stream} ${line.text}\n`

export function logRoutes(deps: LogRoutesDeps) {
  const router = createRouter()
  router.openapi(getLogs, async (c) => {
    const account = accountOf(c)
    const row = await deps.store.get(account.id, c.req.valid('param').id)
    const { tail, follow } = c.req.valid('query')
    const provider = deps.providers.get(row.provider)
    c.header('content-type', 'text/plain; charset=utf-8')
    c.header('cache-control', 'no-cache')
    return stream(c, async (out) => {
      if (!provider) return
      const abort = new AbortController()
      out.onAbort(() => abort.abort())
      const following = follow === '1' || follow === 'true'
      for await (const line of provider.logs(row.id, { tail, follow: following, signal: abort.signal })) {
        await out.write(formatLogLine(line))
      }
    }) as never
  })
  return router
}
