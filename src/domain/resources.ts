import type { DeploymentSpec } from './spec.ts'

// What a deployment's instances take of a machine, in integers (CPUs in thousandths), for the
// quotas an account holds and the capacity a provider admits.

export interface ResourceDemand {
  milliCpus: number
  memoryMb: number
}

/** Every replica gets the spec's resources; a fraction of a thousandth of a CPU counts as one. */
export function resourceDemandOf(spec: DeploymentSpec): ResourceDemand {
  return {
    milliCpus: spec.replicas * Math.ceil(spec.resources.cpus * 1000),
    memoryMb: spec.replicas * spec.resources.memoryMb,
  }
}

export const describeDemand = (d: ResourceDemand) => `${d.milliCpus / 1000} CPUs and ${d.memoryMb} MB`
