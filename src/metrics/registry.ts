import { Counter, Gauge, Histogram, Registry } from 'prom-client'

// One registry per berth instance (never prom-client's global one), so tests and several
// instances in one process do not collide.

export interface Metrics {
  registry: Registry
  deployments: Gauge<'status'>
  deployDuration: Histogram
  reconcileErrors: Counter<'kind'>
  reconcileSteps: Counter
  reconcileLag: Histogram
  refusedTransitions: Counter
  providerErrors: Counter<'provider' | 'kind'>
  httpDuration: Histogram<'method' | 'route' | 'status'>
  chainCursorLag: Gauge<'network' | 'consumer'>
  /** Fleet heartbeats by outcome: accepted, or why refused (fleet/heartbeats.ts). */
  heartbeats: Counter<'outcome'>
  /** Delivery attempts to webhooks and channels, by kind and outcome (notify/sender-loop.ts). */
  deliveryAttempts: Counter<'kind' | 'outcome'>
  /** The latest usage sample of each running deployment (control/usage-sampler.ts). */
  usage: {
    cpuPercent: Gauge<'deployment'>
    memoryBytes: Gauge<'deployment'>
    networkRxBytes: Gauge<'deployment'>
    networkTxBytes: Gauge<'deployment'>
  }
}

export function createMetrics(
  collectDeployments: () => Promise<Array<{ status: string; n: number }>>,
): Metrics {
  const registry = new Registry()
  const deployments = new Gauge({
    name: 'berth_deployments',
    help: 'Deployments by status',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      this.reset()
      for (const { status, n } of await collectDeployments()) this.set({ status }, n)
    },
  })
  const usageGauge = (name: string, help: string) =>
    new Gauge({ name, help, labelNames: ['deployment'], registers: [registry] })
  return {
    registry,
    deployments,
    usage: {
      cpuPercent: usageGauge(
        'berth_deployment_cpu_percent',
        'CPU use of a running deployment, % of one core',
      ),
      memoryBytes: usageGauge(
        'berth_deployment_memory_bytes',
        'Memory of a running deployment (without page cache)',
      ),
      networkRxBytes: usageGauge(
        'berth_deployment_network_rx_bytes',
        'Bytes received by a running deployment since its containers started',
      ),
      networkTxBytes: usageGauge(
        'berth_deployment_network_tx_bytes',
        'Bytes sent by a running deployment since its containers started',
      ),
    },
    deployDuration: new Histogram({
      name: 'berth_deploy_duration_seconds',
      help: 'Time from scheduling to running',
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
      registers: [registry],
    }),
    reconcileErrors: new Counter({
      name: 'berth_reconcile_errors_total',
      help: 'Reconcile steps that failed',
      labelNames: ['kind'],
      registers: [registry],
    }),
    reconcileSteps: new Counter({
      name: 'berth_reconcile_steps_total',
      help: 'Reconcile steps taken',
      registers: [registry],
    }),
    reconcileLag: new Histogram({
      name: 'berth_reconcile_lag_seconds',
      help: 'How late a due deployment was claimed',
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers: [registry],
    }),
    refusedTransitions: new Counter({
      name: 'berth_refused_transitions_total',
      help: 'Transitions refused by the state machine',
      registers: [registry],
    }),
    providerErrors: new Counter({
      name: 'berth_provider_errors_total',
      help: 'Errors raised by providers',
      labelNames: ['provider', 'kind'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'berth_http_request_duration_seconds',
      help: 'HTTP request durations',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    heartbeats: new Counter({
      name: 'berth_fleet_heartbeats_total',
      help: 'Fleet heartbeats received, by outcome (accepted, invalid, unknown_node, bad_signature, skewed, replayed, too_frequent, busy, error)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    deliveryAttempts: new Counter({
      name: 'berth_notify_delivery_attempts_total',
      help: 'Delivery attempts to webhooks and notification channels, by kind (webhook, email, slack, discord, telegram) and outcome (succeeded, failed)',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    }),
    chainCursorLag: new Gauge({
      name: 'berth_chain_cursor_lag_blocks',
      help: 'Blocks between the chain head and what a chain consumer has applied',
      labelNames: ['network', 'consumer'],
      registers: [registry],
    }),
  }
}

/** A fleet node's status and uptime, as the fleet reads them at each scrape. */
export interface NodeSample {
  id: string
  status: string
  uptimePercent: Record<string, number>
}

/**
 * The fleet's gauges, read from the database at each scrape: nodes by status, and each node's
 * uptime over 24 h, 7 d and 30 d (one series per node and window).
 */
export function registerFleetGauges(registry: Registry, collectNodes: () => Promise<NodeSample[]>): void {
  let latest: Promise<NodeSample[]> | undefined
  // Both gauges are collected in one scrape: the nodes are read once for the two of them.
  const nodes = () => {
    latest ??= collectNodes().finally(() => setImmediate(() => (latest = undefined)))
    return latest
  }
  new Gauge({
    name: 'berth_fleet_nodes',
    help: 'Fleet nodes by status',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      this.reset()
      for (const status of ['online', 'lost', 'cordoned', 'draining']) this.set({ status }, 0)
      for (const node of await nodes()) this.inc({ status: node.status })
    },
  })
  new Gauge({
    name: 'berth_fleet_node_uptime_percent',
    help: 'Share of the window a fleet node was up, in percent',
    // Node names are chosen by node operators: not a label, the id says which node it is.
    labelNames: ['node', 'window'],
    registers: [registry],
    async collect() {
      this.reset()
      for (const node of await nodes()) {
        for (const [window, percent] of Object.entries(node.uptimePercent)) {
          this.set({ node: node.id, window }, percent)
        }
      }
    },
  })
}
