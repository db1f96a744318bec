import { randomUUID } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import type { Logger } from 'pino'
import type { Config } from '../config/schema.ts'
import { backoffDelayMs } from '../domain/backoff.ts'
import { abortableDelay } from '../domain/delay.ts'
import { LeaseLostError } from '../domain/errors.ts'
import { canTransition, type Status, TransitionRefusedError } from '../domain/lifecycle.ts'
import type { EventBus } from '../events/bus.ts'
import type { Metrics } from '../metrics/registry.ts'
import { ProviderError, type ProviderRegistry } from '../providers/provider.ts'
import type { DeploymentRow, DeploymentStore, Fence } from './deployment-store.ts'
import { type Funding, reconcileStep } from './reconcile-step.ts'

// The worker loop: claim due deployments (up to `concurrency` at once), run one step for each,
// and sleep until woken (new work in this process, NOTIFY from another, a step finishing) or until
// the poll interval passes, the backstop that finds work whose wake-up was lost.

/** A bound on steps taken under one claim, so that one deployment cannot hold a worker forever. */
const MAX_CHAINED_STEPS = 20

/** Statuses whose workload is (supposed to be) up: an unreachable provider leaves them `degraded`. */
const upStatuses = new Set(['starting', 'running', 'unhealthy'])

/** The desired state left `running` while a deploy was applied. */
class DeployCancelledError extends Error {
  constructor(desired: string) {
    super(`deploy cancelled: the deployment is now meant to be ${desired}`)
    this.name = 'DeployCancelledError'
  }
}

export interface Reconciler {
  readonly workerId: string
  start(): Promise<void>
  /** Stops claiming, lets in-flight steps finish (up to `graceMs`), then aborts the rest. */
  stop(graceMs?: number): Promise<void>
  wake(): void
}

export interface ReconcilerDeps {
  config: Pick<Config, 'reconciler' | 'health'>
  store: DeploymentStore
  providers: ProviderRegistry
  bus: EventBus
  metrics: Metrics
  logger: Logger
  /** True when no other process can hold a lease (PGlite), so stale leases are dropped at start. */
  exclusiveDatabase: boolean
  /** The payment gate before a start, when payments are required. */
  funding?: Funding
  /** The clock for timestamps the steps write (tests inject one). */
  now?: () => Date
}

export function createReconciler(deps: ReconcilerDeps): Reconciler {
  const { config, store, logger, metrics } = deps
  const settings = config.reconciler
  const workerId = `w-${randomUUID().slice(0, 8)}`
  const inFlight = new Set<Promise<void>>()
  const abort = new AbortController()
  // Every step in flight listens for shutdown on this one signal (up to `concurrency` at once).
  setMaxListeners(0, abort.signal)
  let stopping = false
  let loop: Promise<void> | undefined
  let wakeUp: (() => void) | undefined
  let pendingWake = false
  let unsubscribe: (() => void) | undefined

  const wake = () => {
    pendingWake = true
    wakeUp?.()
  }

  // A step that schedules its next look sooner than the poll interval (a health probe in a few
  // hundred ms) sets a timer to wake this worker then, instead of leaving it to the next poll.
  const timers = new Set<NodeJS.Timeout>()
  const wakeAt = (due: Date) => {
    // A few ms late rather than early: woken before the row is due, the worker would find nothing
    // and sleep a whole poll interval.
    const inMs = due.getTime() - Date.now() + 5
    if (inMs >= settings.pollIntervalMs || stopping) return
    const timer = setTimeout(
      () => {
        timers.delete(timer)
        wake()
      },
      Math.max(0, inMs),
    )
    timers.add(timer)
  }

  const waitForWork = async () => {
    if (pendingWake) {
      pendingWake = false
      return
    }
    const timer = new AbortController()
    await new Promise<void>((resolve) => {
      wakeUp = resolve
      abortableDelay(settings.pollIntervalMs, timer.signal).then(resolve, resolve)
    })
    timer.abort()
    wakeUp = undefined
    pendingWake = false
  }

  async function runOne(row: DeploymentRow): Promise<void> {
    const fence: Fence = { owner: workerId, token: Number(row.leaseToken) }
    let current: DeploymentRow | undefined
    const provider = deps.providers.get(row.provider)
    metrics.reconcileSteps.inc()
    metrics.reconcileLag.observe(Math.max(0, Date.now() - new Date(row.nextReconcileAt).getTime()) / 1000)
    // Long provider work (pulls) keeps the lease alive; a lost lease stops our writes anyway.
    const renew = setInterval(
      () => void store.renewLease(row.id, fence, settings.leaseSeconds).catch(() => {}),
      (settings.leaseSeconds * 1000) / 3,
    )
    // A stop or delete that arrives while a deploy is being applied (a user's stop, an NFT changing
    // hands) cancels the provider's work; the next step then stops whatever was created.
    const cancel = new AbortController()
    const relayShutdown = () => cancel.abort(abort.signal.reason)
    abort.signal.addEventListener('abort', relayShutdown, { once: true })
    let unwatch: (() => void) | undefined
    const cancelUnlessWanted = async () => {
      if (cancel.signal.aborted) return
      const desired = await store.desiredStateOf(row.id).catch(() => 'running')
      if (desired !== 'running') cancel.abort(new DeployCancelledError(desired))
    }
    try {
      if (!provider) {
        await failPermanently(row, fence, `provider "${row.provider}" is not configured`)
        return
      }
      // Steps that leave the deployment due at once keep the lease, and this worker takes the next
      // step straight away instead of releasing and re-claiming it.
      current = row
      unwatch = deps.bus.onIntent(row.id, () => void cancelUnlessWanted())
      for (let step = 0; ; step++) {
        const next = await reconcileStep(current, fence, {
          store,
          provider,
          metrics,
          config,
          signal: cancel.signal,
          funding: deps.funding,
          now: deps.now,
          onWrite: (written) => {
            current = written
          },
        })
        current = next
        if (next.leaseOwner !== workerId) {
          wakeAt(new Date(next.nextReconcileAt))
          return
        }
        if (stopping || step >= MAX_CHAINED_STEPS) {
          await store.write(next, fence, { nextInMs: 0 })
          return
        }
      }
    } catch (error) {
      if (cancel.signal.reason instanceof DeployCancelledError && !abort.signal.aborted) {
        await store
          .write(current ?? row, fence, {
            events: [{ type: 'deploy_cancelled', message: cancel.signal.reason.message }],
            nextInMs: 0,
          })
          .catch((e: unknown) =>
            logger.warn({ deploymentId: row.id, err: e }, 'could not record a cancelled deploy'),
          )
        return
      }
      await handleError(current ?? row, fence, error)
    } finally {
      clearInterval(renew)
      unwatch?.()
      abort.signal.removeEventListener('abort', relayShutdown)
    }
  }

  async function failPermanently(row: DeploymentRow, fence: Fence, message: string, eventType = 'failed') {
    await store.write(row, fence, {
      patch: { status: 'failed', stopReason: 'failed', error: message, attempts: 0 },
      events: [{ type: eventType, status: 'failed', message }],
      nextInMs: null,
    })
  }

  async function handleError(row: DeploymentRow, fence: Fence, error: unknown): Promise<void> {
    if (error instanceof LeaseLostError) {
      logger.warn({ deploymentId: row.id }, error.message)
      return
    }
    if (abort.signal.aborted) return // shutting down; the lease expires and another worker resumes
    const kind =
      error instanceof ProviderError
        ? error.kind
        : error instanceof TransitionRefusedError
          ? 'refused'
          : 'internal'
    metrics.reconcileErrors.inc({ kind })
    if (error instanceof ProviderError) metrics.providerErrors.inc({ provider: row.provider, kind })
    if (error instanceof TransitionRefusedError) {
      metrics.refusedTransitions.inc()
      logger.error({ deploymentId: row.id, from: error.from, to: error.to }, error.message)
    } else {
      logger.warn({ deploymentId: row.id, err: error }, 'reconcile step failed')
    }
    const message = (error as Error)?.message ?? String(error)
    try {
      const canFail = canTransition(row.status as Status, 'failed') && row.desiredState === 'running'
      if (error instanceof ProviderError && error.kind === 'permanent' && canFail) {
        await failPermanently(row, fence, message, error.eventType ?? 'failed')
        return
      }
      const attempts = row.attempts + 1
      const unavailable = error instanceof ProviderError && error.kind === 'unavailable'
      // An unreachable backend is recorded once per outage: a running deployment is `degraded`
      // (it keeps its status: its containers most likely still run), anything else waits with
      // `provider_unavailable`. Other errors are recorded on the first attempt and every tenth.
      const record = unavailable ? attempts === 1 : attempts === 1 || attempts % 10 === 0
      const type = unavailable
        ? upStatuses.has(row.status)
          ? 'degraded'
          : 'provider_unavailable'
        : 'reconcile_error'
      await store.write(row, fence, {
        patch: { attempts },
        events: record ? [{ type, message, data: { attempt: attempts } }] : [],
        nextInMs: backoffDelayMs(attempts - 1, {
          baseMs: settings.backoffBaseMs,
          maxMs: settings.backoffMaxMs,
        }),
      })
    } catch (writeError) {
      logger.warn({ deploymentId: row.id, err: writeError }, 'could not record a reconcile error')
    }
  }

  async function run(): Promise<void> {
    while (!stopping) {
      const free = settings.concurrency - inFlight.size
      let claimed = 0
      if (free > 0) {
        try {
          const rows = await store.claimDue(workerId, free, settings.leaseSeconds)
          claimed = rows.length
          for (const row of rows) {
            const task = runOne(row).finally(() => {
              inFlight.delete(task)
              wake()
            })
            inFlight.add(task)
          }
        } catch (error) {
          if (stopping) break
          logger.warn({ err: error }, 'claiming due deployments failed')
          metrics.reconcileErrors.inc({ kind: 'claim' })
          await abortableDelay(settings.backoffBaseMs, abort.signal).catch(() => {})
          continue
        }
      }
      if (claimed > 0 && claimed === free) continue
      await waitForWork()
    }
  }

  return {
    workerId,
    wake,
    async start() {
      if (deps.exclusiveDatabase) await store.clearLeases()
      // Adoption: look at every live deployment once; a step on a running one only observes it.
      const due = await store.markAllDue()
      logger.info({ workerId, due }, 'reconciler started')
      unsubscribe = deps.bus.onWake(wake)
      if (settings.enabled) loop = run()
    },
    async stop(graceMs = 10_000) {
      stopping = true
      unsubscribe?.()
      for (const timer of timers) clearTimeout(timer)
      timers.clear()
      wake()
      await loop
      const grace = new AbortController()
      await Promise.race([
        Promise.allSettled([...inFlight]),
        abortableDelay(graceMs, grace.signal).catch(() => {}),
      ])
      grace.abort()
      abort.abort(new Error('reconciler stopping'))
      await Promise.allSettled([...inFlight])
    },
  }
}
