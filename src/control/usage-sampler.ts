import { and, eq, inArray } from 'drizzle-orm'
import type { Logger } from 'pino'
import type { Database } from '../db/client.ts'
import { deployments, usageSamples } from '../db/schema/index.ts'
import type { Metrics } from '../metrics/registry.ts'
import type { ProviderRegistry, Usage } from '../providers/provider.ts'

// Periodic usage samples of every running deployment: into the /metrics gauges (the latest value
// per deployment) and into `usage_samples` (kept, for billing). A failed read of one deployment
// skips it for this round only.
//
// With several control planes on one database each samples every running deployment; samples are
// keyed (deployment, time), so the copies are distinct rows and billing must take one per interval.

const PARALLEL_READS = 8

export interface UsageSampler {
  /** One round: read, publish and store; returns how many deployments were sampled. */
  sampleOnce(): Promise<number>
  start(intervalSeconds: number): void
  stop(): Promise<void>
}

export function createUsageSampler(deps: {
  database: Database
  providers: ProviderRegistry
  metrics: Metrics
  logger: Logger
}): UsageSampler {
  const db = deps.database.db
  let timer: NodeJS.Timeout | undefined
  let round: Promise<number> | undefined

  async function sampleOnce(): Promise<number> {
    const names = deps.providers.names()
    if (names.length === 0) return 0
    const rows = await db
      .select({ id: deployments.id, provider: deployments.provider })
      .from(deployments)
      .where(and(eq(deployments.status, 'running'), inArray(deployments.provider, names)))
    const samples: Array<{ deploymentId: string; usage: Usage }> = []
    const queue = [...rows]
    const worker = async () => {
      for (let row = queue.shift(); row; row = queue.shift()) {
        try {
          const usage = await deps.providers.get(row.provider)!.stats(row.id)
          samples.push({ deploymentId: row.id, usage })
        } catch (error) {
          deps.logger.debug({ deploymentId: row.id, err: error }, 'usage sample failed')
        }
      }
    }
    await Promise.all(Array.from({ length: PARALLEL_READS }, worker))

    // Gauges show the deployments running now: last round's others disappear.
    const { usage } = deps.metrics
    for (const gauge of Object.values(usage)) gauge.reset()
    for (const { deploymentId, usage: u } of samples) {
      const labels = { deployment: deploymentId }
      usage.cpuPercent.set(labels, u.cpuPercent)
      usage.memoryBytes.set(labels, u.memoryBytes)
      usage.networkRxBytes.set(labels, u.networkRxBytes)
      usage.networkTxBytes.set(labels, u.networkTxBytes)
    }
    if (samples.length > 0) {
      const at = new Date()
      await db
        .insert(usageSamples)
        .values(
          samples.map(({ deploymentId, usage: u }) => ({
            deploymentId,
            at,
            cpuPercent: u.cpuPercent,
            memoryBytes: Math.round(u.memoryBytes),
            rxBytes: Math.round(u.networkRxBytes),
            txBytes: Math.round(u.networkTxBytes),
          })),
        )
        .onConflictDoNothing()
    }
    return samples.length
  }

  return {
    sampleOnce,
    start(intervalSeconds) {
      if (intervalSeconds <= 0) return
      timer = setInterval(() => {
        if (round) return // the last round is still reading: skip rather than pile up
        round = sampleOnce()
          .catch((error: unknown) => {
            deps.logger.warn({ err: error }, 'usage sampling failed')
            return 0
          })
          .finally(() => {
            round = undefined
          })
      }, intervalSeconds * 1000)
    },
    async stop() {
      clearInterval(timer)
      await round
    },
  }
}
