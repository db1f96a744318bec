import type { Config } from '../config/schema.ts'
import { workloadsOf } from '../domain/services.ts'
import type { DeploymentSpec, SingleImageSpec } from '../domain/spec.ts'

// What a deployment costs, from its resources and the operator's prices. Each part is rounded up
// to a whole micro-USD, so a price is never below what the operator set.

type Pricing = Config['pricing']

const ceilDiv = (a: bigint, b: bigint) => (a + b - 1n) / b
/** A month, for the disk price: 730 hours (365 × 24 / 12). */
const HOURS_PER_MONTH = 730n

/** A multi-service deployment costs what its services cost together. */
export function hourlyMicroUsd(spec: DeploymentSpec, pricing: Pricing): bigint {
  return workloadsOf(spec).reduce((sum, w) => sum + workloadHourlyMicroUsd(w.spec, pricing), 0n)
}

function workloadHourlyMicroUsd(spec: SingleImageSpec, pricing: Pricing): bigint {
  const { cpus, memoryMb, gpus, diskMb } = spec.resources
  const milliCpus = BigInt(Math.round(cpus * 1000))
  const perReplica =
    ceilDiv(milliCpus * BigInt(pricing.cpuHourMicroUsd), 1000n) +
    ceilDiv(BigInt(memoryMb) * BigInt(pricing.memoryGibHourMicroUsd), 1024n) +
    BigInt(gpus) * BigInt(pricing.gpuHourMicroUsd) +
    ceilDiv(BigInt(diskMb) * BigInt(pricing.diskGibMonthMicroUsd), 1024n * HOURS_PER_MONTH)
  // Volumes belong to the deployment (its replicas share them), billed by their size as quotas
  // count them: once each.
  const volumeMb = (spec.volumes ?? []).reduce((sum, v) => sum + (v.sizeMb ?? 0), 0)
  const volumes = ceilDiv(BigInt(volumeMb) * BigInt(pricing.diskGibMonthMicroUsd), 1024n * HOURS_PER_MONTH)
  return perReplica * BigInt(spec.replicas) + (volumeMb > 0 ? volumes : 0n)
}

/** The charge for one billing interval. */
export function intervalMicroUsd(spec: DeploymentSpec, pricing: Pricing): bigint {
  return ceilDiv(hourlyMicroUsd(spec, pricing) * BigInt(pricing.billingIntervalSeconds), 3600n)
}
