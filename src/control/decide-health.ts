import type { DeploymentRow } from '../db/deployment-rows.ts'
import {
  checkOfIndex,
  healthTimingOf,
  instanceCountOf,
  instanceNameOf,
  workloadOfIndex,
} from '../domain/services.ts'
import type { Observed, ObservedInstance } from '../providers/provider.ts'
import { type DecideSettings, type Decision, type Facts, move, secondsBetween } from './decision.ts'
import {
  assessHealth,
  countStart,
  ladderDelaySeconds,
  nextLookWhenHealthyMs,
  startsInWindow,
} from './health.ts'
import { SUCCEEDED } from './moves.ts'

// The pure decision for a deployment whose instances are meant to be up (starting, running,
// unhealthy): restart on request, restart an unhealthy one along the backoff ladder until the
// restart budget is spent, and otherwise judge health from the observation (and the probe the
// spec asks for), counting consecutive passes and failures.

/**
 * Until its first passing probe, a starting deployment is probed this often instead of every
 * intervalSeconds, so it turns running as soon as it answers. It still gets the same time before
 * it counts as unhealthy: the failure threshold grows by the same factor.
 */
const STARTING_PROBE_MS = 100

export function supervise(row: DeploymentRow, facts: Facts, now: Date, settings: DecideSettings): Decision {
  const health = settings.health
  const resyncMs = settings.resyncSeconds * 1000

  if (row.restartGeneration > row.appliedRestartGeneration) {
    // A user's restart is a start like any other: it counts against the restart budget.
    const restarted = {
      appliedRestartGeneration: row.restartGeneration,
      healthyStreak: 0,
      unhealthyStreak: 0,
      startingSince: now,
      ...countStart(row, now, health),
    }
    if (row.status === 'starting') {
      // Already starting: restart the instances and start counting passes again, in `starting`.
      return {
        kind: 'write',
        effect: 'restart',
        change: {
          patch: { ...restarted, ...SUCCEEDED },
          events: [{ type: 'restarted', message: 'restarted on request' }],
          nextInMs: 0,
          keepLease: true,
        },
      }
    }
    return {
      kind: 'write',
      effect: 'restart',
      change: move(row, 'starting', {
        stage: 'health-checking',
        message: 'restarted on request',
        patch: restarted,
      }),
    }
  }

  if (row.status === 'unhealthy') {
    const restarts = startsInWindow(row, now, health)
    if (restarts >= health.maxRestarts) {
      return {
        kind: 'write',
        change: move(row, 'failed', {
          eventType: 'failed',
          message: `unhealthy after ${restarts} restarts within ${health.restartWindowSeconds}s`,
          patch: { stopReason: 'failed', error: `restart budget spent: ${restarts} restarts` },
          // At once: the next step rolls it back (its instances removed).
          nextInMs: 0,
        }),
      }
    }
    return {
      kind: 'write',
      effect: 'restart',
      change: move(row, 'starting', {
        stage: 'health-checking',
        eventType: 'restarted',
        message: `restart ${restarts + 1} of at most ${health.maxRestarts}`,
        patch: { ...countStart(row, now, health), healthyStreak: 0, unhealthyStreak: 0, startingSince: now },
      }),
    }
  }

  // A start is unbilled until it turns `running`; it may stay `starting` only so long. Past it,
  // the start fails and is rolled back: it is not restarted by the ladder, whose waits would run
  // the same containers on, unbilled. Starting it again is the owner's call, and counts against
  // the restart budget like every start.
  if (
    row.status === 'starting' &&
    row.startingSince !== null &&
    secondsBetween(row.startingSince, now) >= settings.maxUnbilledStartSeconds
  ) {
    const message = `not healthy within ${settings.maxUnbilledStartSeconds}s of starting (the longest a start may run unbilled)`
    return {
      kind: 'write',
      change: move(row, 'failed', {
        eventType: 'unhealthy',
        message,
        patch: {
          stopReason: 'failed',
          error: message,
          appliedRestartGeneration: row.restartGeneration,
          healthyStreak: 0,
          unhealthyStreak: 0,
          runningSince: null,
        },
        // At once: the next step rolls it back (its instances removed, host ports freed).
        nextInMs: 0,
      }),
    }
  }

  if (facts.observed === undefined) return { kind: 'need-observation' }
  const observed = facts.observed
  const check = healthTimingOf(row.spec)
  const instanceCount = instanceCountOf(row.spec)
  const checkIntervalMs = (check?.intervalSeconds ?? 1) * 1000
  let verdict = assessHealth(observed, instanceCount)
  let failure = 'the provider reports an instance unhealthy'
  // Providers that cannot judge health (`unknown`, e.g. docker) are probed by the control plane;
  // providers that judge it themselves (simulated, the agent) are believed.
  const probing = check !== undefined && observed?.instances.some((i) => i.health === 'unknown') === true
  const fast = probing && row.status === 'starting' && row.healthyStreak === 0
  const intervalMs = fast ? Math.min(checkIntervalMs, STARTING_PROBE_MS) : checkIntervalMs
  const failureThreshold = (check?.unhealthyThreshold ?? 1) * Math.ceil(checkIntervalMs / intervalMs)
  if (verdict === 'healthy' && probing) {
    if (!facts.probe) {
      const spec = row.spec
      return { kind: 'need-probe', of: observed!, checkOf: (index) => checkOfIndex(spec, index) }
    }
    if (facts.probe.failed) {
      verdict = 'unhealthy'
      failure = `${instanceNameOf(row.spec, facts.probe.failed.replica)}: ${facts.probe.failed.detail}`
    }
  }

  if (verdict === 'missing') {
    // Every replica is there but some exited (crashed, killed, out of memory): restart them along
    // the ladder, so a crash loop spends the restart budget and ends as `failed`.
    const exited = exitedReplicas(observed, instanceCount)
    if (exited.length > 0) {
      const oom = exited.some((i) => i.oomKilled)
      const delay = ladderDelaySeconds(health.restartLadderSeconds, row.restartCount)
      const which = exited
        .map((i) => `${instanceNameOf(row.spec, i.replica)} (exit ${i.exitCode ?? '?'})`)
        .join(', ')
      const limits = [
        ...new Set(exited.map((i) => workloadOfIndex(row.spec, i.replica)?.spec.resources.memoryMb)),
      ]
      return {
        kind: 'write',
        change: move(row, 'unhealthy', {
          eventType: oom ? 'oom_killed' : 'instance_exited',
          message: oom
            ? `${which} killed for running out of memory (limit ${limits.join(' / ')} MB); restart in ${delay}s`
            : `${which} exited; restart in ${delay}s`,
          data: {
            replicas: exited.map((i) => ({
              replica: i.replica,
              ...(i.service ? { service: i.service } : {}),
              exitCode: i.exitCode,
              oomKilled: i.oomKilled,
            })),
          },
          patch: { healthyStreak: 0, unhealthyStreak: 0, runningSince: null },
          nextInMs: delay * 1000,
        }),
      }
    }
    // Not there (removed behind our back, or never finished): apply again.
    return {
      kind: 'write',
      change: move(row, 'deploying', {
        stage: 'pulling',
        eventType: 'instance_lost',
        message: 'an instance is missing; reapplying',
      }),
    }
  }

  if (verdict === 'unhealthy') {
    const streak = row.unhealthyStreak + 1
    if (streak >= failureThreshold) {
      const delay = ladderDelaySeconds(health.restartLadderSeconds, row.restartCount)
      return {
        kind: 'write',
        change: move(row, 'unhealthy', {
          message: `health check failed ${streak} times in a row (${failure}); restart in ${delay}s`,
          patch: { healthyStreak: 0, unhealthyStreak: streak, runningSince: null },
          nextInMs: delay * 1000,
        }),
      }
    }
    return {
      kind: 'write',
      change: { patch: { healthyStreak: 0, unhealthyStreak: streak, ...SUCCEEDED }, nextInMs: intervalMs },
    }
  }

  // healthy
  const streak = row.healthyStreak + 1
  if (row.status === 'starting') {
    if (streak >= (check?.healthyThreshold ?? 1)) {
      return {
        kind: 'write',
        change: move(row, 'running', {
          stage: 'running',
          patch: { healthyStreak: streak, unhealthyStreak: 0, runningSince: now },
          nextInMs: nextLookWhenHealthyMs(row.spec, resyncMs),
        }),
        ...(row.deployStartedAt ? { deployDurationSeconds: secondsBetween(row.deployStartedAt, now) } : {}),
      }
    }
    return {
      kind: 'write',
      change: { patch: { healthyStreak: streak, unhealthyStreak: 0, ...SUCCEEDED }, nextInMs: intervalMs },
    }
  }
  // running and healthy: the restart ladder starts over once it has stayed healthy long enough.
  const resetLadder =
    row.restartCount > 0 &&
    row.runningSince !== null &&
    secondsBetween(row.runningSince, now) >= health.ladderResetSeconds
  return {
    kind: 'write',
    change: {
      patch: {
        healthyStreak: streak,
        unhealthyStreak: 0,
        ...SUCCEEDED,
        ...(resetLadder ? { restartCount: 0, restartWindowStartedAt: null } : {}),
      },
      nextInMs: nextLookWhenHealthyMs(row.spec, resyncMs),
    },
  }
}

/**
 * The exited instances when every replica exists and each one not running has exited (so a
 * restart brings them all back); empty when a replica is absent and must be applied again.
 */
function exitedReplicas(observed: Observed | null, replicas: number): ObservedInstance[] {
  if (!observed) return []
  const exited: ObservedInstance[] = []
  for (let replica = 0; replica < replicas; replica++) {
    const instance = observed.instances.find((i) => i.replica === replica)
    if (!instance) return []
    if (instance.state === 'running') continue
    if (instance.state !== 'exited') return []
    exited.push(instance)
  }
  return exited
}
