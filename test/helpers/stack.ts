import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { loadConfig } from '../../src/config/load.ts'
import type { Config } from '../../src/config/schema.ts'
import { type Capacity, createCapacity } from '../../src/control/capacity.ts'
import { createDeploymentStore, type DeploymentStore } from '../../src/control/deployment-store.ts'
import { startProviderWatches } from '../../src/control/provider-watch.ts'
import { createReconciler, type Reconciler } from '../../src/control/reconciler.ts'
import type { Funding } from '../../src/control/step.ts'
import type { Database } from '../../src/db/client.ts'
import { accounts } from '../../src/db/schema/index.ts'
import { createRegistryCredentials } from '../../src/deployments/registry-credentials.ts'
import { createEventBus, type EventBus } from '../../src/events/bus.ts'
import { createEventLog, type EventLog } from '../../src/events/event-log.ts'
import { createMetrics, type Metrics } from '../../src/metrics/registry.ts'
import { type Provider, ProviderRegistry } from '../../src/providers/provider.ts'
import { createSimulatedProvider } from '../../src/providers/simulated/simulated-provider.ts'
import { testVault } from './vault.ts'

// The control plane's moving parts wired in-process on a test database, with the simulated
// provider at zero latency unless told otherwise.

export interface Stack {
  config: Config
  store: DeploymentStore
  events: EventLog
  bus: EventBus
  metrics: Metrics
  provider: Provider
  providers: ProviderRegistry
  reconciler: Reconciler
  capacity: Capacity
  stateDir: string
  /** Runs `close` first when the stack stops (parts a test built on top of the stack). */
  onStop(close: () => Promise<void>): void
  stop(): Promise<void>
}

export async function createStack(
  database: Database,
  options: {
    flags?: Record<string, unknown>
    stateDir?: string
    start?: boolean
    /** Pass-throughs to the reconciler: the payment gate and an injected clock. */
    funding?: Funding
    now?: () => Date
    /** Another provider (e.g. docker) as the default, instead of the simulated one. */
    provider?: Provider
  } = {},
): Promise<Stack> {
  const config = loadConfig({
    env: {},
    flags: {
      reconciler: {
        pollIntervalMs: 50,
        leaseSeconds: 10,
        resyncSeconds: 1,
        backoffBaseMs: 20,
        backoffMaxMs: 200,
      },
      providers: { simulated: { pullMs: 0, createMs: 0, startMs: 0 } },
      ...options.flags,
    },
  })
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'berth-sim-'))
  const bus = createEventBus(database)
  await bus.start()
  const store = createDeploymentStore(database, bus)
  const events = createEventLog(database, bus)
  const metrics = createMetrics(() => store.countByStatus())
  const provider = options.provider ?? createSimulatedProvider({ ...config.providers.simulated, stateDir })
  const providers = new ProviderRegistry(provider.name)
  providers.add(provider)
  const capacity = createCapacity(database, providers)
  const reconciler = createReconciler({
    config,
    store,
    providers,
    bus,
    metrics,
    logger: pino({ level: 'silent' }),
    exclusiveDatabase: database.kind === 'pglite',
    funding: options.funding,
    capacity,
    now: options.now,
    vault: testVault(database.db),
    registryCredentials: createRegistryCredentials({ db: database.db, vault: testVault(database.db) })
      .openFor,
  })
  if (options.start !== false) await reconciler.start()
  const watches = startProviderWatches({ providers, store, bus, logger: pino({ level: 'silent' }) })
  const onTop: Array<() => Promise<void>> = []
  return {
    config,
    store,
    events,
    bus,
    metrics,
    provider,
    providers,
    reconciler,
    capacity,
    stateDir,
    onStop: (close) => onTop.push(close),
    async stop() {
      for (const close of onTop.splice(0).reverse()) await close()
      await watches.stop()
      await reconciler.stop(1000)
      await bus.stop()
      if (!options.stateDir) rmSync(stateDir, { recursive: true, force: true })
    },
  }
}

export async function createAccount(database: Database, address?: string): Promise<string> {
  const id = randomUUID()
  await database.db
    .insert(accounts)
    .values({ id, address: address ?? `0x${randomUUID().replaceAll('-', '').padEnd(40, '0')}` })
  return id
}
