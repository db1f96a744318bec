import { createRoute, z } from '@hono/zod-openapi'
import type { DatabaseKind } from '../../db/client.ts'
import { withDeadline } from '../../domain/delay.ts'
import { unauthorized } from '../../domain/errors.ts'
import { tokenMatcher } from '../../identity/token-match.ts'
import type { Metrics } from '../../metrics/registry.ts'
import type { ProviderRegistry } from '../../providers/provider.ts'
import { createRouter } from '../openapi.ts'

export interface SystemRoutesDeps {
  version: string
  databaseKind: DatabaseKind
  pingDatabase(): Promise<boolean>
  providers: ProviderRegistry
  metrics: Metrics
  /** `metrics.token`: when set, /metrics answers only to it. */
  metricsToken?: string | undefined
}

const health = createRoute({
  method: 'get',
  path: '/health',
  tags: ['system'],
  security: [],
  responses: {
    200: {
      description: 'Health of berth, its database and its providers',
      content: {
        'application/json': {
          schema: z.object({
            status: z.enum(['ok', 'degraded']),
            version: z.string(),
            database: z.enum(['pglite', 'postgres']),
            providers: z.record(z.string(), z.enum(['up', 'down'])),
          }),
        },
      },
    },
  },
})

/** A check that fails or does not answer in time counts as down. */
const upWithin = (check: Promise<boolean>, ms: number) => withDeadline(check, ms).catch(() => false)

export function systemRoutes(deps: SystemRoutesDeps) {
  const router = createRouter()
  router.openapi(health, async (c) => {
    const providers: Record<string, 'up' | 'down'> = {}
    await Promise.all(
      deps.providers.all().map(async (p) => {
        providers[p.name] = (await upWithin(p.ping(), 2000)) ? 'up' : 'down'
      }),
    )
    const databaseUp = await upWithin(deps.pingDatabase(), 2000)
    const degraded = !databaseUp || Object.values(providers).includes('down')
    return c.json(
      {
        status: degraded ? ('degraded' as const) : ('ok' as const),
        version: deps.version,
        database: deps.databaseKind,
        providers,
      },
      200,
    )
  })
  const isMetricsToken = deps.metricsToken === undefined ? undefined : tokenMatcher(deps.metricsToken)
  router.get('/metrics', async (c) => {
    if (isMetricsToken) {
      const bearer = /^Bearer +(\S+) *$/i.exec(c.req.header('authorization') ?? '')?.[1] ?? ''
      if (!isMetricsToken(bearer)) throw unauthorized('/metrics needs its bearer token')
    }
    c.header('content-type', deps.metrics.registry.contentType)
    return c.body(await deps.metrics.registry.metrics())
  })
  return router
}
