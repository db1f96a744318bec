import type { DeploymentRow } from '../db/deployment-rows.ts'
import type { Observed } from '../providers/provider.ts'

// Pure judgements on a deployment's health, shared by the reconciler's decisions.

export type HealthVerdict = 'healthy' | 'unhealthy' | 'missing'

/**
 * What the instances of a deployment say about its health. A replica that is absent or not
 * running is `missing` (it must be applied again); any unhealthy replica makes the whole
 * deployment unhealthy. An instance whose provider cannot judge health (`unknown`) counts as
 * healthy while it runs; when the spec has a healthCheck, the control plane then probes it
 * (probe.ts) and a failed probe overrides this verdict.
 */
export function assessHealth(observed: Observed | null, replicas: number): HealthVerdict {
  if (!observed) return 'missing'
  for (let replica = 0; replica < replicas; replica++) {
    const instance = observed.instances.find((i) => i.replica === replica)
    if (instance?.state !== 'running') return 'missing'
  }
  return observed.instances.some((i) => i.health === 'unhealthy') ? 'unhealthy' : 'healthy'
}

/** Delay before the next restart: the ladder's rung for this restart, the last rung repeating. */
export function ladderDelaySeconds(ladder: readonly number[], restartCount: number): number {
  return ladder[Math.min(restartCount, ladder.length - 1)] ?? 0
}

/** When to look again at a deployment found healthy: its check interval, or the resync period. */
export function nextLookWhenHealthyMs(spec: DeploymentRow['spec'], resyncMs: number): number {
  return spec.healthCheck ? Math.min(resyncMs, spec.healthCheck.intervalSeconds * 1000) : resyncMs
}
