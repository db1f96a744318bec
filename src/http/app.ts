import { createNodeWebSocket } from '@hono/node-ws'
import { HTTPException } from 'hono/http-exception'
import type { Logger } from 'pino'
import type { Audit } from '../audit/audit.ts'
import type { Config } from '../config/schema.ts'
import type { DatabaseKind } from '../db/client.ts'
import type { Credentials } from '../deployments/credentials.ts'
import type { Deployments } from '../deployments/deployments.ts'
import type { RegistryCredentials } from '../deployments/registry-credentials.ts'
import { BerthError } from '../domain/errors.ts'
import type { Fleet } from '../fleet/fleet.ts'
import type { Identity } from '../identity/create-identity.ts'
import type { Metrics } from '../metrics/registry.ts'
import type { Notify } from '../notify/notify.ts'
import type { ProviderRegistry } from '../providers/provider.ts'
import type { Quotas } from '../quotas/quotas.ts'
import type { Catalog } from '../templates/catalog.ts'
import { renderDocsPage } from './docs-page.ts'
import { errorResponse, hidesDetail, toBerthError } from './errors.ts'
import { actingOrg } from './middleware/acting-org.ts'
import { auditDenied } from './middleware/audit-denied.ts'
import { bodyReader } from './middleware/body-reader.ts'
import { mountRateLimits } from './middleware/limits.ts'
import { clientAddress } from './middleware/rate-limit.ts'
import { requestId } from './middleware/request-id.ts'
import { requireAuth } from './middleware/require-auth.ts'
import { refuseNulInQuery } from './middleware/url-nul.ts'
import { createRouter } from './openapi.ts'
import { auditRoutes } from './routes/audit.ts'
import { deploymentRoutes } from './routes/deployments.ts'
import { eventRoutes } from './routes/events.ts'
import { fleetRoutes } from './routes/fleet.ts'
import { identityRoutes } from './routes/identity.ts'
import { logRoutes, mountLogSocket } from './routes/logs.ts'
import { nftRoutes } from './routes/nfts.ts'
import { nodeRoutes } from './routes/nodes.ts'
import { notificationRoutes } from './routes/notifications.ts'
import { channelRoutes, webhookRoutes } from './routes/notify-targets.ts'
import { orgRoutes } from './routes/orgs.ts'
import { type PaymentRoutesDeps, paymentRoutes } from './routes/payments.ts'
import { quotaRoutes } from './routes/quotas.ts'
import { registryCredentialRoutes } from './routes/registry-credentials.ts'
import { systemRoutes } from './routes/system.ts'
import { templateRoutes } from './routes/templates.ts'
import { mountEventSocket } from './routes/websocket.ts'
import { createStreamGuard } from './streams.ts'

export interface HttpDeps {
  limits: Pick<Config, 'rateLimits' | 'trustProxyHops' | 'streams'>
  version: string
  bodyLimitBytes: number
  metricsToken?: string | undefined
  databaseKind: DatabaseKind
  pingDatabase(): Promise<boolean>
  deployments: Deployments
  credentials: Credentials
  registryCredentials: RegistryCredentials
  templates: { catalog: Catalog; pricing: Config['pricing'] }
  providers: ProviderRegistry
  metrics: Metrics
  identity: Identity
  quotas: Quotas
  payments: PaymentRoutesDeps
  notify: Notify
  audit: Audit
  fleet: Fleet
  logger: Logger
}

/** The largest message a client may send on a WebSocket. */
const MAX_CLIENT_MESSAGE_BYTES = 4096

export function createHttpApp(deps: HttpDeps) {
  const app = createRouter()
  const { upgradeWebSocket, injectWebSocket, wss } = createNodeWebSocket({ app })
  // berth's sockets only send; what a client sends is never read, so it may be tiny (ws reads
  // the option for each connection it accepts; a larger frame closes the socket with 1009).
  wss.options.maxPayload = MAX_CLIENT_MESSAGE_BYTES
  const streams = createStreamGuard({
    settings: deps.limits.streams,
    authenticator: deps.identity.authenticator,
    orgs: deps.identity.orgs,
    deployments: deps.deployments,
    logger: deps.logger,
  })
  const live = { deployments: deps.deployments, streams }

  app.use('*', requestId())
  app.use('*', async (c, next) => {
    c.set('clientIp', clientAddress(c, deps.limits.trustProxyHops))
    await next()
  })
  app.use('*', async (c, next) => {
    const started = performance.now()
    await next()
    // The matched route pattern, not the raw path, keeps label cardinality bounded.
    const route = c.req.routePath || 'unmatched'
    deps.metrics.httpDuration.observe(
      { method: c.req.method, route, status: String(c.res.status) },
      (performance.now() - started) / 1000,
    )
  })
  app.use('*', refuseNulInQuery())
  app.use('*', bodyReader(deps.bodyLimitBytes))
  mountRateLimits(app, deps.limits, () => {
    app.use('/v1/*', requireAuth(deps.identity.authenticator))
  })
  // After the write limit: a refused change is written to the audit log, so each one counts
  // against the caller's writes like any other.
  app.use('/v1/*', auditDenied(deps.audit, deps.logger))
  app.use('/v1/*', actingOrg(deps.identity.orgs))

  app.route('/', systemRoutes(deps))
  app.route('/', identityRoutes(deps.identity))
  app.route('/', orgRoutes(deps.identity.orgs))
  app.route('/', deploymentRoutes(deps.deployments, deps.credentials))
  app.route('/', registryCredentialRoutes(deps.registryCredentials))
  app.route('/', templateRoutes(deps.templates))
  app.route('/', eventRoutes(live))
  app.route('/', logRoutes(deps.deployments, streams, deps.logger))
  app.route('/', paymentRoutes(deps.payments))
  app.route('/', quotaRoutes(deps.quotas))
  app.route('/', auditRoutes(deps.audit))
  app.route('/', nftRoutes(deps))
  app.route('/', notificationRoutes(deps.notify))
  app.route('/', webhookRoutes(deps.notify))
  app.route('/', channelRoutes(deps.notify))
  app.route('/', fleetRoutes(deps.fleet))
  app.route('/', nodeRoutes(deps.fleet.nodes, deps.fleet.earnings))
  mountEventSocket(app, upgradeWebSocket, live)
  mountLogSocket(app, upgradeWebSocket, live)

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'A session token, an API key (berth_…), the operator admin token, or an external JWT',
  })
  const documentConfig = {
    openapi: '3.1.0',
    info: { title: 'berth', version: deps.version },
    security: [{ bearer: [] }],
  }
  app.doc31('/openapi.json', documentConfig)
  app.get('/docs', (c) => c.html(renderDocsPage(app.getOpenAPI31Document(documentConfig))))

  app.notFound((c) =>
    errorResponse(c, new BerthError('not_found', `no route for ${c.req.method} ${c.req.path}`)),
  )
  app.onError((error, c) => {
    if (error instanceof HTTPException && !(error.cause instanceof BerthError)) {
      const code =
        error.status === 413 ? 'payload_too_large' : error.status === 401 ? 'unauthorized' : 'invalid_input'
      const message = error.message || 'bad request'
      return errorResponse(
        c,
        new BerthError(code, message.replace(/^Malformed JSON.*/i, 'malformed JSON in request body')),
      )
    }
    const shown = toBerthError(error)
    if (shown.code === 'internal' || hidesDetail(shown, error)) {
      deps.logger.error({ err: error, requestId: c.get('requestId'), code: shown.code }, 'request failed')
    }
    return errorResponse(c, shown)
  })

  return { app, injectWebSocket, streams }
}
