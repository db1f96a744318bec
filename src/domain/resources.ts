import { workloadsOf } from './services.ts'
import type { DeploymentSpec } from './spec.ts'

// What a deployment's instances take of a machine, in integers (CPUs in thousandths), for the
// quotas an account holds and the capacity a provider admits.

export interface ResourceDemand {
  milliCpus: number
  memoryMb: number
}

/**
 * Every replica gets its workload's resources (services add up); a fraction of a thousandth of a
 * CPU counts as one.
 */
export function resourceDemandOf(spec: DeploymentSpec): ResourceDemand {
  const demand = { milliCpus: 0, memoryMb: 0 }
  for (const { spec: w } of workloadsOf(spec)) {
    demand.milliCpus += w.replicas * Math.ceil(w.resources.cpus * 1000)
    demand.memoryMb += w.replicas * w.resources.memoryMb
  }
  return demand
}

export const describeDemand = (d: ResourceDemand) => `${d.milliCpus / 1000} CPUs and ${d.memoryMb} MB`
