import type { DeploymentRow } from '../db/deployment-rows.ts'
import { healthTimingOf } from '../domain/services.ts'
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
export function assessHealth(observed: Observed | null, instances: number): HealthVerdict {
  if (!observed) return 'missing'
  for (let index = 0; index < instances; index++) {
    const instance = observed.instances.find((i) => i.replica === index)
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
  const timing = healthTimingOf(spec)
  return timing ? Math.min(resyncMs, timing.intervalSeconds * 1000) : resyncMs
}

type HealthSettings = { maxRestarts: number; restartWindowSeconds: number }
type StartCounters = Pick<DeploymentRow, 'restartCount' | 'restartWindowStartedAt'>

/** Starts counted in the restart window that is open at `now` (none when it has passed). */
export function startsInWindow(row: StartCounters, now: Date, health: HealthSettings): number {
  const windowStart = row.restartWindowStartedAt
  const open =
    windowStart !== null && (now.getTime() - windowStart.getTime()) / 1000 < health.restartWindowSeconds
  return open ? row.restartCount : 0
}

/**
 * The counters after one more start: every start after the first (a restart on the ladder, a
 * user's restart, a start after a stop or a failure) counts against the restart budget, since
 * each gives the workload another unbilled start window.
 */
export function countStart(row: StartCounters, now: Date, health: HealthSettings): StartCounters {
  const counted = startsInWindow(row, now, health)
  return {
    restartCount: counted + 1,
    restartWindowStartedAt: counted > 0 ? row.restartWindowStartedAt : now,
  }
}

/** When the open window's starts are spent, the time a start is possible again; else null. */
export function startBudgetSpentUntil(row: StartCounters, now: Date, health: HealthSettings): Date | null {
  if (startsInWindow(row, now, health) < health.maxRestarts) return null
  return new Date(row.restartWindowStartedAt!.getTime() + health.restartWindowSeconds * 1000)
}
