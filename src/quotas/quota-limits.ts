import { z } from 'zod'
import { BerthError } from '../domain/errors.ts'
import { resourceDemandOf } from '../domain/resources.ts'
import { workloadsOf } from '../domain/services.ts'
import type { DeploymentSpec } from '../domain/spec.ts'

// What one account may hold at once, and what a deployment spec takes of it. Pure: the database
// side (usage of what an account already has, the operator's overrides) lives in quota-store.ts.
//
// Every deployment that is not yet deleted counts, whatever its status: a stopped deployment keeps
// its host ports and may be started again at any time without asking, and a failed one may be
// restarted, so both keep their share until they are deleted.

export const quotaKeys = [
  'deployments',
  'replicas',
  'hostPorts',
  'cpus',
  'memoryMb',
  'diskMb',
  'volumes',
  'apiKeys',
] as const
export type QuotaKey = (typeof quotaKeys)[number]

/** Limits; CPUs in thousandths (milli-CPUs) so sums stay integers. */
export type QuotaLimits = Record<QuotaKey, number>
export type QuotaUsage = Record<QuotaKey, number>

const limit = z.int().min(0).max(1_000_000_000)

/** The config's and the admin's view: CPUs as a number of CPUs, at most three decimals. */
export const quotaValuesSchema = z.strictObject({
  deployments: limit,
  replicas: limit,
  hostPorts: limit,
  /** Counted in thousandths of a CPU: finer values are rounded. */
  cpus: z.number().min(0).max(1_000_000),
  memoryMb: limit,
  diskMb: limit,
  volumes: limit,
  apiKeys: limit,
})
export type QuotaValues = z.infer<typeof quotaValuesSchema>

export const toMilliCpus = (cpus: number) => Math.round(cpus * 1000)
export const fromMilliCpus = (milli: number) => milli / 1000

export function limitsOf(values: QuotaValues): QuotaLimits {
  return { ...values, cpus: toMilliCpus(values.cpus) }
}

export function valuesOf(limits: QuotaLimits): QuotaValues {
  return { ...limits, cpus: fromMilliCpus(limits.cpus) }
}

export const noUsage = (): QuotaUsage => ({
  deployments: 0,
  replicas: 0,
  hostPorts: 0,
  cpus: 0,
  memoryMb: 0,
  diskMb: 0,
  volumes: 0,
  apiKeys: 0,
})

/**
 * What a deployment holds while it exists. Replicas each get the spec's resources and publish each
 * of its ports on a host port; volumes are shared by the replicas. Stored on the deployment's row
 * when it is created (control/create-batch.ts), which is what quota-store.ts sums.
 */
export function demandOf(spec: DeploymentSpec): QuotaUsage {
  const { milliCpus, memoryMb } = resourceDemandOf(spec)
  const usage = { ...noUsage(), deployments: 1, cpus: milliCpus, memoryMb }
  // A multi-service deployment holds what its services hold together.
  for (const { spec: workload } of workloadsOf(spec)) {
    const replicas = workload.replicas
    const volumes = workload.volumes ?? []
    usage.replicas += replicas
    usage.hostPorts += replicas * (workload.ports?.length ?? 0)
    usage.diskMb +=
      replicas * workload.resources.diskMb + volumes.reduce((sum, v) => sum + (v.sizeMb ?? 0), 0)
    usage.volumes += volumes.length
  }
  return usage
}

export function addUsage(...parts: QuotaUsage[]): QuotaUsage {
  const total = noUsage()
  for (const part of parts) for (const key of quotaKeys) total[key] += part[key]
  return total
}

const labels: Record<QuotaKey, string> = {
  deployments: 'deployments',
  replicas: 'replicas',
  hostPorts: 'host ports',
  cpus: 'CPUs',
  memoryMb: 'memory (MB)',
  diskMb: 'disk (MB)',
  volumes: 'volumes',
  apiKeys: 'API keys',
}

const shown = (key: QuotaKey, value: number) => (key === 'cpus' ? fromMilliCpus(value) : value)

/** Refuses (403 quota_exceeded) when `used + demand` is over a limit, naming the first such limit. */
export function checkQuota(limits: QuotaLimits, used: QuotaUsage, demand: QuotaUsage): void {
  for (const key of quotaKeys) {
    if (demand[key] === 0) continue
    if (used[key] + demand[key] <= limits[key]) continue
    const details = {
      quota: key,
      limit: shown(key, limits[key]),
      used: shown(key, used[key]),
      requested: shown(key, demand[key]),
    }
    throw new BerthError(
      'quota_exceeded',
      `quota exceeded: ${labels[key]} limit is ${details.limit}, ${details.used} in use, this asks for ${details.requested} more`,
      { details },
    )
  }
}
