import type { DeploymentUsage, Usage } from '../provider.ts'

// Pure: one engine stats sample (`stats({ stream: false })`, which carries the previous sample in
// `precpu_stats`) → the provider's usage, computed the way `docker stats` does.

export interface EngineStats {
  cpu_stats?: {
    cpu_usage?: { total_usage?: number; percpu_usage?: number[] }
    system_cpu_usage?: number
    online_cpus?: number
  }
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number }
  memory_stats?: { usage?: number; stats?: Record<string, number> }
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>
}

export function usageOf(sample: EngineStats): Usage {
  const cpu = sample.cpu_stats
  const cpuDelta = (cpu?.cpu_usage?.total_usage ?? 0) - (sample.precpu_stats?.cpu_usage?.total_usage ?? 0)
  const systemDelta = (cpu?.system_cpu_usage ?? 0) - (sample.precpu_stats?.system_cpu_usage ?? 0)
  const cpus = cpu?.online_cpus || cpu?.cpu_usage?.percpu_usage?.length || 1
  const cpuPercent = cpuDelta > 0 && systemDelta > 0 ? (cpuDelta / systemDelta) * cpus * 100 : 0

  // Page cache is reclaimable, so it is not the workload's memory: cgroup v2 calls it
  // inactive_file, v1 total_inactive_file (again as `docker stats` does).
  const memory = sample.memory_stats
  const cache = memory?.stats?.inactive_file ?? memory?.stats?.total_inactive_file ?? 0
  const memoryBytes = Math.max(0, (memory?.usage ?? 0) - cache)

  let networkRxBytes = 0
  let networkTxBytes = 0
  for (const net of Object.values(sample.networks ?? {})) {
    networkRxBytes += net.rx_bytes ?? 0
    networkTxBytes += net.tx_bytes ?? 0
  }
  return { cpuPercent, memoryBytes, networkRxBytes, networkTxBytes }
}

export function sumUsage(samples: Usage[]): Usage {
  return samples.reduce(
    (sum, u) => ({
      cpuPercent: sum.cpuPercent + u.cpuPercent,
      memoryBytes: sum.memoryBytes + u.memoryBytes,
      networkRxBytes: sum.networkRxBytes + u.networkRxBytes,
      networkTxBytes: sum.networkTxBytes + u.networkTxBytes,
    }),
    { cpuPercent: 0, memoryBytes: 0, networkRxBytes: 0, networkTxBytes: 0 },
  )
}

/** The sum over instances, and per service when the instances belong to services. */
export function usageByService(
  samples: Array<{ service: string | undefined; usage: Usage }>,
): DeploymentUsage {
  const total = sumUsage(samples.map((s) => s.usage))
  const named = samples.filter((s) => s.service !== undefined)
  if (named.length === 0) return total
  const services: Record<string, Usage> = {}
  for (const service of new Set(named.map((s) => s.service!))) {
    services[service] = sumUsage(named.filter((s) => s.service === service).map((s) => s.usage))
  }
  return { ...total, services }
}
