import type { Config } from '../config/schema.ts'
import { assertTransition, type ProgressStage, type Status, stagePercent } from '../domain/lifecycle.ts'
import type { Metrics } from '../metrics/registry.ts'
import type { ApplyContext, Observed, ObservedInstance, Provider } from '../providers/provider.ts'
import type {
  DeploymentPatch,
  DeploymentRow,
  DeploymentStore,
  EventInput,
  Fence,
} from './deployment-store.ts'
import { assessHealth, ladderDelaySeconds } from './health.ts'
import { probeInstances } from './probe.ts'

/**
 * Until its first passing probe, a starting deployment is probed this often instead of every
 * intervalSeconds, so it turns running as soon as it answers. It still gets the same time before
 * it counts as unhealthy: the failure threshold grows by the same factor.
 */
const STARTING_PROBE_MS = 100

// One reconcile step: look at a claimed deployment, take at most one step towards its desired
// state, and write the new status and its event in one fenced transaction. Running a step twice
// changes nothing, because every provider call is idempotent and keyed by the deployment id.

/** Decides whether a deployment is paid for enough to start (payments.required); see payments/funding.ts. */
export interface Funding {
  /** Null when it may start (its first hold is in place); otherwise why not, and when to look again. */
  admit(row: DeploymentRow): Promise<{ message: string; retryInMs: number } | null>
}

export interface StepDeps {
  store: DeploymentStore
  provider: Provider
  funding?: Funding
  metrics: Metrics
  config: Pick<Config, 'reconciler' | 'health'>
  signal: AbortSignal
  now?: () => Date
}

// Every provider here places a deployment as soon as it is scheduled, so scheduling is passed
// through in the same write as the move to deploying. (A fleet scheduler that must choose a node
// will make `scheduled` a step of its own.)
const scheduling = { status: 'scheduled', stage: 'scheduling' } as const

interface Move {
  patch?: DeploymentPatch
  stage?: ProgressStage
  message?: string
  eventType?: string
  data?: unknown
  nextInMs?: number | null
  /**
   * A status passed through on the way, needing no provider work: it is validated and recorded as
   * its own event, but written together with the final status, saving a round trip.
   */
  through?: { status: Status; stage: ProgressStage }
  /** Events that happened before this move and are written with it (buffered progress). */
  after?: EventInput[]
}

/**
 * Progress of an apply is written this long after it happens, together with any progress that
 * follows; an apply that finishes sooner writes its progress with the move that ends it. Watchers
 * still see every stage, a fraction of a second late at most, and a quick apply costs one write
 * instead of one per stage.
 */
const PROGRESS_FLUSH_MS = 150

export async function reconcileStep(
  row: DeploymentRow,
  fence: Fence,
  deps: StepDeps,
): Promise<DeploymentRow> {
  const { store, provider } = deps
  const now = deps.now ?? (() => new Date())
  const status = row.status as Status
  const resyncMs = deps.config.reconciler.resyncSeconds * 1000

  const write = (change: Parameters<DeploymentStore['write']>[2]) => store.write(row, fence, change)
  const move = (to: Status, m: Move = {}) => {
    const passed: EventInput[] = []
    if (m.through) {
      assertTransition(status, m.through.status)
      assertTransition(m.through.status, to)
      const { status: via, stage: viaStage } = m.through
      passed.push({ type: 'status_changed', status: via, stage: viaStage, percent: stagePercent[viaStage] })
    } else {
      assertTransition(status, to)
    }
    const stage = m.stage ?? (row.stage as ProgressStage)
    const event: EventInput = {
      type: m.eventType ?? 'status_changed',
      status: to,
      stage,
      percent: stagePercent[stage],
      ...(m.message ? { message: m.message } : {}),
      ...(m.data === undefined ? {} : { data: m.data }),
    }
    const nextInMs = m.nextInMs === undefined ? 0 : m.nextInMs
    return write({
      patch: { status: to, stage, percent: stagePercent[stage], attempts: 0, ...m.patch },
      events: [...(m.after ?? []), ...passed, event],
      nextInMs,
      // Work due at once stays with this worker, which goes straight on to the next step.
      keepLease: nextInMs === 0,
    })
  }
  const settle = () => write({ patch: { attempts: 0 }, nextInMs: null })

  if (row.desiredState === 'deleted') {
    if (status === 'deleting') {
      await provider.remove(row.id)
      return move('deleted', { nextInMs: null, patch: { endpoints: [] } })
    }
    return move('deleting')
  }

  if (row.desiredState === 'stopped') {
    if (status === 'stopped' || status === 'failed') return settle()
    if (status === 'stopping') {
      await provider.stop(row.id)
      return move('stopped', {
        nextInMs: null,
        message: row.stopReason ? `stopped (${row.stopReason})` : 'stopped',
      })
    }
    return move('stopping')
  }

  // desired: running. Starting is gated by funding when payments are required.
  const begin = async (patch: DeploymentPatch = {}) => {
    const refusal = deps.funding ? await deps.funding.admit(row) : null
    if (!refusal) {
      return move('deploying', {
        through: scheduling,
        stage: 'pulling',
        patch: { deployStartedAt: now(), ...patch },
      })
    }
    if (status === 'awaiting_payment') return write({ patch: { attempts: 0 }, nextInMs: refusal.retryInMs })
    return move('awaiting_payment', {
      stage: 'queued',
      message: refusal.message,
      nextInMs: refusal.retryInMs,
    })
  }
  switch (status) {
    case 'pending':
    case 'awaiting_payment':
      return begin()
    case 'stopped':
      return begin({ stopReason: null, error: null })
    case 'failed':
      if (row.restartGeneration > row.appliedRestartGeneration) {
        return begin({ error: null, stopReason: null, restartCount: 0, restartWindowStartedAt: null })
      }
      return settle()
    case 'stopping':
      // A start arrived while stopping: finish the stop, then start from `stopped`.
      await provider.stop(row.id)
      return move('stopped')
    case 'scheduled':
      return move('deploying', { stage: 'pulling', patch: { deployStartedAt: now() } })
    case 'deploying':
      return deploy(row, fence, deps, move)
    case 'starting':
    case 'running':
    case 'unhealthy':
      return supervise(row, deps, move, write, resyncMs)
    default:
      return settle()
  }
}

async function deploy(
  row: DeploymentRow,
  fence: Fence,
  deps: StepDeps,
  move: (to: Status, m?: Move) => Promise<DeploymentRow>,
): Promise<DeploymentRow> {
  const buffered: EventInput[] = []
  let lastStage = row.stage
  let timer: NodeJS.Timeout | undefined
  let flushed: Promise<unknown> = Promise.resolve()
  let flushError: unknown
  const flush = () => {
    clearTimeout(timer)
    timer = undefined
    const events = buffered.splice(0)
    const stage = events.at(-1)?.stage
    if (!stage) return
    flushed = flushed
      .then(() =>
        deps.store.write(row, fence, {
          patch: { stage, percent: stagePercent[stage] },
          events,
          keepLease: true,
        }),
      )
      // Kept until the apply is over, then thrown from there (a lost lease ends the step).
      .catch((error: unknown) => {
        flushError ??= error
      })
  }
  const ctx: ApplyContext = {
    signal: deps.signal,
    progress: async (stage, message) => {
      if (stage === lastStage) return
      lastStage = stage
      buffered.push({
        type: 'progress',
        stage,
        percent: stagePercent[stage],
        ...(message ? { message } : {}),
      })
      timer ??= setTimeout(flush, PROGRESS_FLUSH_MS)
    },
  }
  let observed: Awaited<ReturnType<Provider['apply']>>
  try {
    observed = await deps.provider.apply(
      { id: row.id, ownerId: row.ownerId, spec: row.spec, restartGeneration: row.restartGeneration },
      ctx,
    )
  } catch (error) {
    // The stages reached before the failure are recorded before the failure is.
    flush()
    await flushed
    throw flushError ?? error
  }
  clearTimeout(timer)
  await flushed
  if (flushError) throw flushError
  return move('starting', {
    stage: 'health-checking',
    after: buffered,
    patch: {
      endpoints: observed.endpoints,
      appliedRestartGeneration: row.restartGeneration,
      healthyStreak: 0,
      unhealthyStreak: 0,
    },
  })
}

async function supervise(
  row: DeploymentRow,
  deps: StepDeps,
  move: (to: Status, m?: Move) => Promise<DeploymentRow>,
  write: (change: Parameters<DeploymentStore['write']>[2]) => Promise<DeploymentRow>,
  resyncMs: number,
): Promise<DeploymentRow> {
  const status = row.status as Status
  const now = deps.now ?? (() => new Date())
  const health = deps.config.health
  const check = row.spec.healthCheck
  const checkIntervalMs = (check?.intervalSeconds ?? 1) * 1000

  if (row.restartGeneration > row.appliedRestartGeneration) {
    await deps.provider.restart(row.id)
    return move('starting', {
      stage: 'health-checking',
      message: 'restarted on request',
      patch: { appliedRestartGeneration: row.restartGeneration, healthyStreak: 0, unhealthyStreak: 0 },
    })
  }

  if (status === 'unhealthy') {
    const windowStart = row.restartWindowStartedAt
    const inWindow =
      windowStart && now().getTime() - windowStart.getTime() < health.restartWindowSeconds * 1000
    const restarts = inWindow ? row.restartCount : 0
    if (restarts >= health.maxRestarts) {
      return move('failed', {
        eventType: 'failed',
        message: `unhealthy after ${restarts} restarts within ${health.restartWindowSeconds}s`,
        patch: { stopReason: 'failed', error: `restart budget spent: ${restarts} restarts` },
        nextInMs: null,
      })
    }
    await deps.provider.restart(row.id)
    return move('starting', {
      stage: 'health-checking',
      eventType: 'restarted',
      message: `restart ${restarts + 1} of at most ${health.maxRestarts}`,
      patch: {
        restartCount: restarts + 1,
        restartWindowStartedAt: inWindow ? windowStart : now(),
        healthyStreak: 0,
        unhealthyStreak: 0,
      },
    })
  }

  const observed = await deps.provider.observe(row.id)
  let verdict = assessHealth(observed, row.spec.replicas)
  let failure = 'the provider reports an instance unhealthy'
  // Providers that cannot judge health (`unknown`, e.g. docker) are probed by the control plane;
  // providers that judge it themselves (simulated, the agent) are believed.
  const probing = check !== undefined && observed?.instances.some((i) => i.health === 'unknown') === true
  const fast = probing && status === 'starting' && row.healthyStreak === 0
  const intervalMs = fast ? Math.min(checkIntervalMs, STARTING_PROBE_MS) : checkIntervalMs
  const failureThreshold = (check?.unhealthyThreshold ?? 1) * Math.ceil(checkIntervalMs / intervalMs)
  if (verdict === 'healthy' && probing) {
    const failed = await probeInstances(observed!, check!)
    if (failed) {
      verdict = 'unhealthy'
      failure = `replica ${failed.replica}: ${failed.detail}`
    }
  }

  if (verdict === 'missing') {
    // Every replica is there but some exited (crashed, killed, out of memory): restart them along
    // the ladder, so a crash loop spends the restart budget and ends as `failed`.
    const exited = exitedReplicas(observed, row.spec.replicas)
    if (exited.length > 0) {
      const oom = exited.filter((i) => i.oomKilled)
      const delay = ladderDelaySeconds(health.restartLadderSeconds, row.restartCount)
      const which = exited.map((i) => `replica ${i.replica} (exit ${i.exitCode ?? '?'})`).join(', ')
      return move('unhealthy', {
        eventType: oom.length > 0 ? 'oom_killed' : 'instance_exited',
        message:
          oom.length > 0
            ? `${which} killed for running out of memory (limit ${row.spec.resources.memoryMb} MB); restart in ${delay}s`
            : `${which} exited; restart in ${delay}s`,
        data: {
          replicas: exited.map((i) => ({ replica: i.replica, exitCode: i.exitCode, oomKilled: i.oomKilled })),
        },
        patch: { healthyStreak: 0, unhealthyStreak: 0, runningSince: null },
        nextInMs: delay * 1000,
      })
    }
    // Not there (removed behind our back, or never finished): apply again.
    return move('deploying', {
      stage: 'pulling',
      eventType: 'instance_lost',
      message: 'an instance is missing; reapplying',
    })
  }

  if (verdict === 'unhealthy') {
    const streak = row.unhealthyStreak + 1
    if (streak >= failureThreshold) {
      const delay = ladderDelaySeconds(health.restartLadderSeconds, row.restartCount)
      return move('unhealthy', {
        message: `health check failed ${streak} times in a row (${failure}); restart in ${delay}s`,
        patch: { healthyStreak: 0, unhealthyStreak: streak, runningSince: null },
        nextInMs: delay * 1000,
      })
    }
    return write({ patch: { healthyStreak: 0, unhealthyStreak: streak, attempts: 0 }, nextInMs: intervalMs })
  }

  // healthy
  const streak = row.healthyStreak + 1
  if (status === 'starting') {
    if (streak >= (check?.healthyThreshold ?? 1)) {
      if (row.deployStartedAt) {
        deps.metrics.deployDuration.observe((now().getTime() - row.deployStartedAt.getTime()) / 1000)
      }
      return move('running', {
        stage: 'running',
        patch: { healthyStreak: streak, unhealthyStreak: 0, runningSince: now() },
        nextInMs: Math.min(resyncMs, intervalMs),
      })
    }
    return write({ patch: { healthyStreak: streak, unhealthyStreak: 0, attempts: 0 }, nextInMs: intervalMs })
  }
  // running and healthy: the restart ladder starts over once it has stayed healthy long enough.
  const resetLadder =
    row.restartCount > 0 &&
    row.runningSince !== null &&
    now().getTime() - row.runningSince.getTime() >= health.ladderResetSeconds * 1000
  return write({
    patch: {
      healthyStreak: streak,
      unhealthyStreak: 0,
      attempts: 0,
      ...(resetLadder ? { restartCount: 0, restartWindowStartedAt: null } : {}),
    },
    nextInMs: check ? Math.min(resyncMs, intervalMs) : resyncMs,
  })
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
