import type { Logger } from 'pino'
import { paymentNetworks } from '../config/payments-schema.ts'
import type { Config } from '../config/schema.ts'
import type { DeploymentStore } from '../control/deployment-store.ts'
import type { Funding } from '../control/step.ts'
import type { Database } from '../db/client.ts'
import type { EventLog } from '../events/event-log.ts'
import type { Metrics } from '../metrics/registry.ts'
import { createBalances } from './balances.ts'
import { type Billing, createBilling, type PayableLegs } from './billing.ts'
import type { createChainAccess } from './chain-access.ts'
import type { CreditingDeps } from './crediting.ts'
import { createFunding } from './funding.ts'
import { registerPaymentMetrics } from './metrics.ts'
import { PriceOracle } from './oracle.ts'
import { createOrders } from './orders.ts'

// Everything payments, built from the config: oracle, orders, balances, and (when payments are
// required) the funding gate and the metering pass, and a treasury watcher per network.

export interface PaymentsDeps {
  database: Database
  store: DeploymentStore
  events: EventLog
  config: Pick<Config, 'payments' | 'pricing' | 'networks'>
  metrics: Pick<Metrics, 'registry' | 'chainCursorLag'>
  logger: Logger
  now?: () => Date
  /** Shares each charge's payable among node operators (the fleet's earnings). */
  payableLegs?: PayableLegs
}

export async function createPayments(deps: PaymentsDeps) {
  const { database, config } = deps
  // Networks used only for NFT collections take no payments: no treasury to watch.
  const networks = paymentNetworks(config.networks)
  // The chain code, and viem with it (~31 MB), is loaded only when there is a network to read.
  const chainCode = networks.length > 0 ? await import('./chain-access.ts') : undefined
  const watcherCode = networks.length > 0 ? await import('./watcher.ts') : undefined
  const chains = new Map<number, ReturnType<typeof createChainAccess>>(
    networks.map((n) => [n.chainId, chainCode!.createChainAccess(n)]),
  )
  const oracle = new PriceOracle({
    clientFor: (chainId) => {
      const access = chains.get(chainId)
      if (!access) throw new Error(`chain ${chainId} is not configured`)
      return access.clients[0]!
    },
    ...(deps.now ? { now: deps.now } : {}),
  })
  const crediting: CreditingDeps = {
    database,
    currentRate: (chainId, token) => oracle.price(chainId, token).then((p) => p.median),
    metrics: registerPaymentMetrics(deps.metrics.registry, database),
    ...(deps.now ? { now: deps.now } : {}),
  }
  const orders = createOrders({
    database,
    config,
    store: deps.store,
    oracle,
    chains,
    crediting,
    now: deps.now,
  })
  const balances = createBalances(database)
  const funding: Funding | undefined = config.payments.required ? createFunding(database, config) : undefined
  const billing: Billing | undefined = config.payments.required
    ? createBilling({
        database,
        store: deps.store,
        events: deps.events,
        config,
        now: deps.now,
        log: deps.logger,
        ...(deps.payableLegs ? { payableLegs: deps.payableLegs } : {}),
      })
    : undefined

  const watchers = [...chains.values()].map((access) =>
    watcherCode!.createPaymentsWatcher({
      database,
      access,
      crediting,
      metrics: deps.metrics,
      logger: deps.logger,
    }),
  )

  return {
    orders,
    watchers,
    balances,
    funding,
    async start() {
      billing?.start()
      for (const watcher of watchers) watcher.start()
    },
    async stop() {
      await Promise.all(watchers.map((w) => w.stop()))
      await billing?.stop()
    },
  }
}

export type Payments = Awaited<ReturnType<typeof createPayments>>
