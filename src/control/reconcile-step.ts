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

/** The longest the probe right after an apply may take before the deployment is left `starting`. */
const FIRST_LOOK_TIMEOUT_SECONDS = 1

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
  /**
   * Told of each write made in the middle of a step (the progress of a long apply), so that an
   * error ending the step is handled against the status that write left (`deploying`).
   */
  onWrite?: (row: DeploymentRow) => void
}

// Every provider here places a deployment as soon as it is scheduled, so scheduling is passed
// through in the same write as the move to deploying. (A fleet scheduler that must choose a node
// will make `scheduled` a step of its own.)
const scheduling: Passage = { status: 'scheduled', stage: 'scheduling' }
const deploying: Passage = { status: 'deploying', stage: 'pulling' }

/** A status passed through on the way to another, needing no provider work of its own. */
interface Passage {
  status: Status
  stage: ProgressStage
}

interface Move {
  patch?: DeploymentPatch
  stage?: ProgressStage
  message?: string
  eventType?: string
  data?: unknown
  nextInMs?: number | null
  /** The status moved from, when not the claimed row's (a deploy wrote `deploying` meanwhile). */
  from?: Status
  /**
   * Statuses passed through on the way: each is validated and recorded as its own event, but
   * written together with the final status, saving a round trip per status.
   */
  through?: Passage[]
  /** Events that happened before this move and are written with it (buffered progress). */
  before?: EventInput[]
}

/**
 * Progress of an apply is written this long after it happens, together with any progress that
 * follows; an apply that finishes sooner writes its progress with the move that ends it. Watchers
 * still see every stage, half a second late at most, and a quick apply costs one write instead of
 * one per stage (a busy control plane's applies of a few hundred ms included).
 */
const PROGRESS_FLUSH_MS = 500

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
    const passed = passage(m.from ?? status, m.through ?? [])
    assertTransition(passed.at(-1)?.status ?? m.from ?? status, to)
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
      events: [...(m.before ?? []), ...passed, event],
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
      return deploy(row, fence, deps, move, {
        from: status,
        through: [scheduling, deploying],
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
      return deploy(row, fence, deps, move, {
        from: status,
        through: [deploying],
        patch: { deployStartedAt: now() },
      })
    case 'deploying':
      return deploy(row, fence, deps, move, { from: status, through: [], patch: {} })
    case 'starting':
    case 'running':
    case 'unhealthy':
      return supervise(row, deps, move, write, resyncMs)
    default:
      return settle()
  }
}

/** The events of passing through these statuses from `from`, each transition validated. */
function passage(from: Status, through: Passage[]): EventInput[] {
  let at = from
  return through.map(({ status, stage }) => {
    assertTransition(at, status)
    at = status
    return { type: 'status_changed', status, stage, percent: stagePercent[stage] }
  })
}

/**
 * Where a deploy starts: the status it was claimed in, the statuses to pass through before the
 * provider works (scheduled, deploying), and what the move to `deploying` sets.
 */
interface DeployStart {
  from: Status
  through: Passage[]
  patch: DeploymentPatch
}

/**
 * Applies the deployment. The move to `deploying` and the progress of the apply are written when
 * the apply has run for PROGRESS_FLUSH_MS, together with any progress that follows; an apply that
 * finishes sooner is written in one statement with the move that ends it: `starting`, or straight
 * on to `running` when the provider's own word on health is all the spec asks for.
 */
async function deploy(
  row: DeploymentRow,
  fence: Fence,
  deps: StepDeps,
  move: (to: Status, m?: Move) => Promise<DeploymentRow>,
  start: DeployStart,
): Promise<DeploymentRow> {
  const now = deps.now ?? (() => new Date())
  // Not yet written: the passage to `deploying` (and what that move sets), then the apply's progress.
  const buffered: EventInput[] = passage(start.from, start.through)
  let unwritten: DeploymentPatch | undefined = start.through.length > 0 ? start.patch : undefined
  let lastStage = start.through.at(-1)?.stage ?? row.stage
  let timer: NodeJS.Timeout | undefined
  let flushed: Promise<unknown> = Promise.resolve()
  let flushError: unknown
  const flush = () => {
    clearTimeout(timer)
    timer = undefined
    const events = buffered.splice(0)
    if (events.length === 0) return
    const stage = [...events].reverse().find((e) => e.stage)?.stage ?? 'pulling'
    const statusPatch: DeploymentPatch = unwritten ? { status: 'deploying', ...unwritten } : {}
    unwritten = undefined
    flushed = flushed
      .then(async () => {
        const written = await deps.store.write(row, fence, {
          patch: { ...statusPatch, stage, percent: stagePercent[stage] },
          events,
          keepLease: true,
        })
        deps.onWrite?.(written)
      })
      // Kept until the apply is over, then thrown from there (a lost lease ends the step).
      .catch((error: unknown) => {
        flushError ??= error
      })
  }
  timer = setTimeout(flush, PROGRESS_FLUSH_MS)
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
  const applied: DeploymentPatch = {
    ...unwritten,
    endpoints: observed.endpoints,
    appliedRestartGeneration: row.restartGeneration,
    unhealthyStreak: 0,
  }
  // The passage to `deploying` is validated and in `buffered` (or written): moves go on from there.
  const from = 'deploying'
  if (await healthyOnceApplied(observed, row.spec)) {
    const started = start.patch.deployStartedAt ?? row.deployStartedAt
    if (started) deps.metrics.deployDuration.observe((now().getTime() - started.getTime()) / 1000)
    return move('running', {
      from,
      through: [{ status: 'starting', stage: 'health-checking' }],
      before: buffered,
      stage: 'running',
      patch: { ...applied, healthyStreak: 1, runningSince: now() },
      nextInMs: nextLookWhenHealthyMs(row.spec, deps.config.reconciler.resyncSeconds * 1000),
    })
  }
  return move('starting', {
    from,
    before: buffered,
    stage: 'health-checking',
    patch: { ...applied, healthyStreak: 0 },
  })
}

/**
 * True when the instances an apply reports are enough to call the deployment running: every
 * replica runs, the spec asks for a single passing look, and that look passes: the provider's own
 * word on health, or (for a provider that cannot judge it) the spec's probe, tried once at once.
 * Most workloads answer by the time their container has started; one that does not yet goes on
 * to `starting` and is probed there.
 */
async function healthyOnceApplied(observed: Observed, spec: DeploymentRow['spec']): Promise<boolean> {
  if (assessHealth(observed, spec.replicas) !== 'healthy') return false
  const check = spec.healthCheck
  if (!check) return true
  if (check.healthyThreshold > 1) return false
  if (observed.instances.every((i) => i.health === 'healthy')) return true
  if (observed.instances.some((i) => i.health === 'unhealthy')) return false
  // A short look: a workload still starting is left to the probes in `starting`.
  const firstLook = { ...check, timeoutSeconds: Math.min(check.timeoutSeconds, FIRST_LOOK_TIMEOUT_SECONDS) }
  return (await probeInstances(observed, firstLook)) === null
}

/** When to look again at a deployment found healthy: its check interval, or the resync period. */
function nextLookWhenHealthyMs(spec: DeploymentRow['spec'], resyncMs: number): number {
  return spec.healthCheck ? Math.min(resyncMs, spec.healthCheck.intervalSeconds * 1000) : resyncMs
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
        nextInMs: nextLookWhenHealthyMs(row.spec, resyncMs),
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
    nextInMs: nextLookWhenHealthyMs(row.spec, resyncMs),
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
