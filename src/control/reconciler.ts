import { randomUUID } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import type { Logger } from 'pino'
import type { Config } from '../config/schema.ts'
import type { DeploymentRow, Fence } from '../db/deployment-rows.ts'
import { abortableDelay } from '../domain/delay.ts'
import type { EventBus } from '../events/bus.ts'
import type { Metrics } from '../metrics/registry.ts'
import type { ProviderRegistry, RegistryCredential } from '../providers/provider.ts'
import type { Vault } from '../secrets/vault.ts'
import type { Capacity } from './capacity.ts'
import type { DeploymentStore } from './deployment-store.ts'
import { executeStep, type Funding } from './step.ts'

// The worker loop: claim due deployments (up to `concurrency` at once), run one step for each,
// and sleep until woken (new work in this process, NOTIFY from another, a step finishing) or until
// the poll interval passes, the backstop that finds work whose wake-up was lost.

/** A bound on steps taken under one claim, so that one deployment cannot hold a worker forever. */
const MAX_CHAINED_STEPS = 20

export interface Reconciler {
  readonly workerId: string
  start(): Promise<void>
  /** Stops claiming, lets in-flight steps finish (up to `graceMs`), then aborts the rest. */
  stop(graceMs?: number): Promise<void>
  wake(): void
}

export interface ReconcilerDeps {
  config: Pick<Config, 'reconciler' | 'health' | 'billing'>
  store: DeploymentStore
  providers: ProviderRegistry
  bus: EventBus
  metrics: Metrics
  logger: Logger
  /** True when no other process can hold a lease (PGlite), so stale leases are dropped at start. */
  exclusiveDatabase: boolean
  /** The payment gate before a start, when payments are required. */
  funding?: Funding
  /** Admission of starts against the providers' capacity. */
  capacity?: Pick<Capacity, 'admit'>
  /** The clock for timestamps the steps write (tests inject one). */
  now?: () => Date
  /** Opens the sealed secret env values of a spec on its way to the provider. */
  vault: Pick<Vault, 'open'>
  /** The owner's own registry credentials, opened, for the provider to pull its images with. */
  registryCredentials?: (ownerId: string) => Promise<RegistryCredential[]>
}

export function createReconciler(deps: ReconcilerDeps): Reconciler {
  const { config, store, logger, metrics } = deps
  const settings = config.reconciler
  const workerId = `reconciler-${randomUUID().slice(0, 8)}`
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
    metrics.reconcileSteps.inc()
    metrics.reconcileLag.observe(Math.max(0, Date.now() - new Date(row.nextReconcileAt).getTime()) / 1000)
    // Long provider work (pulls) keeps the lease alive; a lost lease stops our writes anyway.
    const renew = setInterval(
      () => void store.renewLease(row.id, fence, settings.leaseSeconds).catch(() => {}),
      (settings.leaseSeconds * 1000) / 3,
    )
    const stepDeps = {
      store,
      provider: deps.providers.get(row.provider),
      funding: deps.funding,
      capacity: deps.capacity,
      metrics,
      logger,
      config,
      shutdown: abort.signal,
      onIntent: deps.bus.onIntent,
      now: deps.now ?? (() => new Date()),
      vault: deps.vault,
      ...(deps.registryCredentials ? { registryCredentials: deps.registryCredentials } : {}),
    }
    try {
      // Steps that leave the deployment due at once keep the lease, and this worker takes the next
      // step straight away instead of releasing and re-claiming it.
      let current = row
      for (let step = 0; ; step++) {
        const next = await executeStep(current, fence, stepDeps)
        if (!next) return
        current = next
        if (next.leaseOwner !== workerId) {
          wakeAt(new Date(next.nextReconcileAt))
          return
        }
        if (stopping || step >= MAX_CHAINED_STEPS) {
          await store.write(next, fence, { nextInMs: 0 }).catch((error: unknown) => {
            logger.warn({ deploymentId: row.id, err: error }, 'could not release a deployment')
          })
          return
        }
      }
    } finally {
      clearInterval(renew)
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
