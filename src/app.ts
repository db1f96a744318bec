import type { AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import { serve } from '@hono/node-server'
import { sql } from 'drizzle-orm'
import { type Logger, pino } from 'pino'
import { createAudit } from './audit/audit.ts'
import { publicUrlOf } from './config/load.ts'
import type { Config } from './config/schema.ts'
import { createCapacity } from './control/capacity.ts'
import { createDeploymentStore } from './control/deployment-store.ts'
import { sweepOrphans } from './control/orphan-sweep.ts'
import { startProviderWatches } from './control/provider-watch.ts'
import { createReconciler } from './control/reconciler.ts'
import { createUsageSampler } from './control/usage-sampler.ts'
import { openDatabase } from './db/client.ts'
import { runMigrations } from './db/migrate.ts'
import { createCredentials } from './deployments/credentials.ts'
import { createDeployments } from './deployments/deployments.ts'
import { createRegistryCredentials } from './deployments/registry-credentials.ts'
import { invalidInput } from './domain/errors.ts'
import { dockerProviderOf, swarmProviderOf } from './engine-providers.ts'
import { createEventBus } from './events/bus.ts'
import { createEventLog } from './events/event-log.ts'
import { createFleet } from './fleet/fleet.ts'
import { createHttpApp } from './http/app.ts'
import { createIdentity } from './identity/create-identity.ts'
import { createMetrics } from './metrics/registry.ts'
import { createNft } from './nft/nft.ts'
import { createNotify } from './notify/notify.ts'
import { createPayments } from './payments/payments.ts'
import { type Provider, ProviderRegistry } from './providers/provider.ts'
import { createSimulatedProvider } from './providers/simulated/simulated-provider.ts'
import { createQuotas } from './quotas/quotas.ts'
import { sealLegacySecrets } from './secrets/legacy.ts'
import { openMasterKeys } from './secrets/master-keys.ts'
import { createVault } from './secrets/vault.ts'
import { BUILT_IN_TEMPLATES, loadCatalog } from './templates/catalog.ts'
import { packageVersion } from './version.ts'

// The composition root: builds every part from the config, starts them in order, and stops them
// in reverse. Nothing here runs at import.

export interface RunningBerth {
  url: string
  port: number
  stop(): Promise<void>
}

/**
 * berth's logger: JSON lines, or one readable line per entry for a person at a terminal. The
 * readable form is written synchronously on this thread (no worker), so a crash loses no line.
 */
export async function createLogger(
  config: Pick<Config, 'logLevel' | 'logFormat'>,
  output: { terminal: boolean },
): Promise<Logger> {
  const options = { level: config.logLevel, base: { service: 'berth' } }
  const pretty = config.logFormat === 'pretty' || (config.logFormat === 'auto' && output.terminal)
  if (!pretty) return pino(options)
  // Loaded only when used: a server logging JSON does not carry the formatter.
  const { default: pinoPretty } = await import('pino-pretty')
  return pino(options, pinoPretty({ sync: true, colorize: output.terminal, ignore: 'pid,hostname,service' }))
}

export async function startBerth(config: Config, logger: Logger): Promise<RunningBerth> {
  const stack: Array<() => Promise<void>> = []
  const stop = async () => {
    // Last started, first stopped.
    for (const close of stack.splice(0).reverse()) {
      await close().catch((error: unknown) => logger.error({ err: error }, 'error while stopping'))
    }
  }
  try {
    const dataDir = resolve(config.dataDir)
    const database = await openDatabase({
      dataDir,
      ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
    })
    stack.push(() => database.close())
    await runMigrations(database)

    const bus = createEventBus(database)
    await bus.start()
    stack.push(() => bus.stop())

    const store = createDeploymentStore(database, bus)
    const events = createEventLog(database, bus)
    const metrics = createMetrics(() => store.countByStatus())
    const registered: Provider[] = []
    if (config.providers.simulated.enabled) {
      registered.push(
        createSimulatedProvider({
          stateDir: config.providers.simulated.stateDir ?? join(dataDir, 'simulated'),
          ...config.providers.simulated,
        }),
      )
    }
    const docker = await dockerProviderOf(config, database, logger)
    if (docker) registered.push(docker)
    const swarm = await swarmProviderOf(config, database, logger)
    if (swarm) registered.push(swarm)
    const quotas = createQuotas(database.db, config.quotas)
    // Read and checked now: a bad template file stops the start, naming the file.
    const catalog = loadCatalog([BUILT_IN_TEMPLATES, ...config.templates.dirs])
    const vault = createVault(database.db, openMasterKeys(config, dataDir, logger))
    await vault.checkMasterKeys()
    const sealedSpecs = await sealLegacySecrets(database.db, vault)
    if (sealedSpecs > 0)
      logger.info({ deployments: sealedSpecs }, 'sealed secret env values kept in the clear')
    const identity = await createIdentity({ db: database.db, config, quotas, vault })
    const fleet = createFleet({
      database,
      config,
      siwe: identity.siwe,
      metrics,
      logger,
      bus,
      markDue: (ids) => store.markDue(ids),
      vault,
    })
    if (config.providers.fleet.enabled) registered.push(fleet.provider)
    // An explicit default wins; otherwise real containers when an engine answered, else simulated.
    const providers = new ProviderRegistry(config.providers.default ?? (docker ? docker.name : 'simulated'))
    for (const provider of registered) providers.add(provider)
    if (!providers.get(providers.defaultName)) {
      throw invalidInput(
        `invalid configuration: providers.default: "${providers.defaultName}" is not enabled`,
      )
    }

    const capacity = createCapacity(database, providers)
    const payments = await createPayments({
      database,
      store,
      events,
      config,
      metrics,
      logger,
      payableLegs: fleet.earnings.payableLegs,
    })
    const registryCredentials = createRegistryCredentials({ db: database.db, vault })
    const reconciler = createReconciler({
      config,
      store,
      providers,
      bus,
      metrics,
      logger,
      exclusiveDatabase: database.kind === 'pglite',
      funding: payments.funding,
      capacity,
      vault,
      registryCredentials: registryCredentials.openFor,
    })
    await reconciler.start()
    stack.push(() => reconciler.stop())
    await payments.start()
    stack.push(() => payments.stop())
    const watches = startProviderWatches({ providers, store, bus, logger })
    stack.push(() => watches.stop())
    const sampler = createUsageSampler({ database, providers, metrics, logger })
    sampler.start(config.usage.sampleIntervalSeconds)
    stack.push(() => sampler.stop())
    const nft = await createNft({ database, bus, config, metrics, logger, vault })
    await nft.start()
    stack.push(() => nft.stop())

    const sweep = setInterval(
      () =>
        void sweepOrphans(providers, store, logger).catch((e: unknown) =>
          logger.warn({ err: e }, 'sweep failed'),
        ),
      config.reconciler.sweepIntervalSeconds * 1000,
    )
    stack.push(async () => clearInterval(sweep))

    fleet.start()
    stack.push(() => fleet.stop())

    const notify = createNotify({
      database,
      config,
      vault,
      logger,
      watched: { providers, capacity, metrics },
      attempted: (made, kind) =>
        metrics.deliveryAttempts.inc({ kind, outcome: made.ok ? 'succeeded' : 'failed' }),
    })
    await notify.start()
    stack.push(() => notify.stop())

    const deployments = createDeployments({
      limits: config,
      store,
      events,
      bus,
      providers,
      capacity,
      quotas,
      nft,
      vault,
      templates: { catalog, mirror: config.images.mirror },
    })
    const credentials = createCredentials({ db: database.db, vault, providers, get: deployments.get })
    const { app, injectWebSocket, streams } = createHttpApp({
      version: packageVersion(),
      limits: config,
      metricsToken: config.metrics.token,
      bodyLimitBytes: config.bodyLimitBytes,
      databaseKind: database.kind,
      pingDatabase: async () => {
        await database.db.execute(sql`select 1`)
        return true
      },
      deployments,
      credentials,
      registryCredentials,
      templates: { catalog, pricing: config.pricing },
      providers,
      metrics,
      identity,
      quotas,
      payments: { config, deployments, orders: payments.orders, balances: payments.balances },
      notify,
      audit: createAudit(database.db),
      fleet,
      logger,
    })
    const server = await new Promise<ReturnType<typeof serve>>((resolveServer, reject) => {
      const s = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, () => resolveServer(s))
      s.once('error', reject)
    })
    injectWebSocket(server)
    stack.push(async () => streams.stop())
    stack.push(
      () =>
        new Promise<void>((resolveClose) => {
          server.close(() => resolveClose())
          // Open streams (SSE, logs, WebSockets) would hold close() forever.
          ;(server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.()
        }),
    )
    const port = (server.address() as AddressInfo).port
    const url = `http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${port}`
    logger.info({ url, publicUrl: publicUrlOf(config).href, database: database.kind }, 'berth is listening')
    return { url, port, stop }
  } catch (error) {
    await stop()
    throw error
  }
}
