import { setMaxListeners } from 'node:events'
import type { Logger } from 'pino'
import type { Config } from '../config/schema.ts'
import type { DeploymentRow, Fence } from '../db/deployment-rows.ts'
import { LeaseLostError } from '../domain/errors.ts'
import { type DesiredState, TransitionRefusedError } from '../domain/lifecycle.ts'
import type { Metrics } from '../metrics/registry.ts'
import {
  type Provider,
  ProviderError,
  type RegistryCredential,
  WaitingForServiceError,
} from '../providers/provider.ts'
import { openSpecSecrets } from '../secrets/spec-secrets.ts'
import type { Vault } from '../secrets/vault.ts'
import { type AppliedWithProgress, applyWithProgress } from './apply-progress.ts'
import type { Capacity } from './capacity.ts'
import { decide } from './decide.ts'
import { decideAfterFailure, type StepFailure } from './decide-failure.ts'
import type { Decision, DeployStart, Facts } from './decision.ts'
import { DeployCancelledError } from './deploy-cancelled.ts'
import type { FencedWrites } from './leases.ts'
import type { FencedChange } from './moves.ts'
import { probeInstances } from './probe.ts'

// One reconcile step, the effects around the pure decision: ask decide() what to do, gather the
// facts it asks for (funding, an observation, a probe), make the provider call it names, and
// write its change fenced by the lease. Every provider call is idempotent and keyed by the
// deployment id, so a step repeated after a crash changes nothing. Failures are decided too
// (decide-failure.ts) and written here, against the row as the step last wrote it.

/** Decides whether a deployment is paid for enough to start (payments.required); see payments/funding.ts. */
export interface Funding {
  /** Null when it may start (its first hold is in place); otherwise why not, and when to look again. */
  admit(row: DeploymentRow): Promise<{ message: string; retryInMs: number } | null>
}

export interface StepDeps {
  store: Pick<FencedWrites, 'write'> & { desiredStateOf(id: string): Promise<DesiredState> }
  /** Undefined when the deployment names a provider this server does not offer. */
  provider: Provider | undefined
  funding?: Funding
  /** Admission against the provider's capacity; absent: every start is admitted. */
  capacity?: Pick<Capacity, 'admit'>
  metrics: Metrics
  logger: Logger
  config: Pick<Config, 'reconciler' | 'health' | 'billing'>
  /** Aborts when the reconciler shuts down. */
  shutdown: AbortSignal
  /** Subscribes to changes of a deployment's desired state (stop, start, restart, delete). */
  onIntent(deploymentId: string, fn: () => void): () => void
  now: () => Date
  /** Opens the spec's sealed secret env values for the provider. */
  vault: Pick<Vault, 'open'>
  /** The owner's own registry credentials, opened (none when absent). */
  registryCredentials?: (ownerId: string) => Promise<RegistryCredential[]>
}

/** Takes one step. Resolves with the row as written, or null when the lease is lost or berth is stopping. */
export async function executeStep(
  row: DeploymentRow,
  fence: Fence,
  deps: StepDeps,
): Promise<DeploymentRow | null> {
  // The row as this step last wrote it: a failure is recorded against the status it left.
  let latest = row
  const cancel = watchForCancel(row, deps)
  try {
    if (!deps.provider) {
      // Unavailable, not failed: a provider missing at start (an engine slow to answer its probe,
      // a config being changed) must not fail and roll back what runs there. The deployment
      // waits, retried with backoff, until a server that offers the provider takes it.
      throw new ProviderError('unavailable', `provider "${row.provider}" is not configured on this server`)
    }
    const provider = deps.provider
    const settings = {
      resyncSeconds: deps.config.reconciler.resyncSeconds,
      health: deps.config.health,
      maxUnbilledStartSeconds: deps.config.billing.maxUnbilledStartSeconds,
    }
    const facts: Facts = {}
    let unwritten: { events: FencedChange['events']; patch: FencedChange['patch'] } | undefined
    for (;;) {
      const decision: Decision = decide(row, facts, deps.now(), settings)
      switch (decision.kind) {
        case 'need-funding': {
          const refusal = deps.funding ? await deps.funding.admit(row) : null
          facts.funding = refusal ? { admitted: false, ...refusal } : { admitted: true }
          continue
        }
        case 'need-capacity':
          facts.capacity = deps.capacity ? await deps.capacity.admit(row, fence) : { admitted: true }
          continue
        case 'need-observation':
          facts.observed = await provider.observe(row.id)
          continue
        case 'need-probe':
          facts.probe = { failed: await probeInstances(decision.of, decision.checkOf) }
          continue
        case 'apply': {
          const applied = await applyCancellable(row, fence, decision.start, provider, cancel.signal, deps)
          latest = applied.latest
          if (!applied.ok) throw applied.error
          unwritten = applied.unwritten
          facts.applied = { observed: applied.observed, deployStartedAt: decision.start.deployStartedAt }
          continue
        }
        case 'refused':
          throw new TransitionRefusedError(decision.from, decision.to)
        case 'write': {
          if (decision.effect) await provider[decision.effect](row.id)
          const change = unwritten
            ? {
                ...decision.change,
                patch: { ...unwritten.patch, ...decision.change.patch },
                events: [...(unwritten.events ?? []), ...(decision.change.events ?? [])],
              }
            : decision.change
          const written = await deps.store.write(row, fence, change)
          if (decision.deployDurationSeconds !== undefined) {
            deps.metrics.deployDuration.observe(decision.deployDurationSeconds)
          }
          return written
        }
      }
    }
  } catch (error) {
    return recordFailure(latest, fence, error, deps)
  } finally {
    cancel.dispose()
  }
}

/**
 * A signal for the whole step that aborts when berth shuts down, or when the desired state stops
 * being `running` meanwhile (a user's stop, an NFT changing hands: DeployCancelledError).
 */
function watchForCancel(row: DeploymentRow, deps: StepDeps) {
  const cancel = new AbortController()
  setMaxListeners(0, cancel.signal)
  const relayShutdown = () => cancel.abort(deps.shutdown.reason)
  if (deps.shutdown.aborted) relayShutdown()
  deps.shutdown.addEventListener('abort', relayShutdown, { once: true })
  const unwatch =
    row.desiredState === 'running'
      ? deps.onIntent(row.id, () => {
          if (cancel.signal.aborted) return
          void deps.store.desiredStateOf(row.id).then(
            (desired) => {
              if (desired !== 'running') cancel.abort(new DeployCancelledError(desired))
            },
            () => {},
          )
        })
      : () => {}
  return {
    signal: cancel.signal,
    dispose() {
      unwatch()
      deps.shutdown.removeEventListener('abort', relayShutdown)
    },
  }
}

/**
 * The apply, abandoned when the step is cancelled (see watchForCancel): the next step stops or
 * deletes whatever it created. A deploy cancelled before it began is not begun.
 */
async function applyCancellable(
  row: DeploymentRow,
  fence: Fence,
  start: DeployStart,
  provider: Provider,
  signal: AbortSignal,
  deps: StepDeps,
): Promise<AppliedWithProgress> {
  if (signal.reason instanceof DeployCancelledError) return { ok: false, error: signal.reason, latest: row }
  const applied = await applyWithProgress(row, fence, start, {
    store: deps.store,
    provider,
    signal,
    // Opened only here, on the way to the provider: the stored spec keeps them sealed.
    openSpec: (r) => openSpecSecrets(deps.vault, { ownerId: r.ownerId, deploymentId: r.id }, r.spec),
    openRegistryCredentials: deps.registryCredentials ?? (async () => []),
    readyTimeoutMs: deps.config.billing.maxUnbilledStartSeconds * 1000,
  })
  // Whatever the provider threw on the way out (or even if it finished), the deploy is abandoned:
  // a deployment no longer meant to run never becomes `running`.
  if (signal.reason instanceof DeployCancelledError) {
    return { ok: false, error: signal.reason, latest: applied.latest }
  }
  return applied
}

async function recordFailure(
  row: DeploymentRow,
  fence: Fence,
  error: unknown,
  deps: StepDeps,
): Promise<DeploymentRow | null> {
  const { logger, metrics } = deps
  if (error instanceof LeaseLostError) {
    logger.warn({ deploymentId: row.id }, error.message)
    return null
  }
  // Shutting down: the lease expires and another worker (or this one after a restart) resumes.
  if (deps.shutdown.aborted) return null
  const failure = failureOf(error)
  const expected = failure.kind === 'cancelled' || failure.kind === 'waiting'
  if (!expected) {
    metrics.reconcileErrors.inc({ kind: failure.kind })
    if (error instanceof ProviderError)
      metrics.providerErrors.inc({ provider: row.provider, kind: failure.kind })
  }
  if (error instanceof TransitionRefusedError) {
    metrics.refusedTransitions.inc()
    logger.error({ deploymentId: row.id, from: error.from, to: error.to }, error.message)
  } else if (!expected) {
    logger.warn({ deploymentId: row.id, err: error }, 'reconcile step failed')
  }
  const change = decideAfterFailure(row, failure, deps.now(), deps.config.reconciler, Math.random())
  try {
    return await deps.store.write(row, fence, change)
  } catch (writeError) {
    logger.warn({ deploymentId: row.id, err: writeError }, 'could not record a reconcile step failure')
    return null
  }
}

function failureOf(error: unknown): StepFailure {
  const message = (error as Error)?.message ?? String(error)
  if (error instanceof DeployCancelledError) return { kind: 'cancelled', message }
  if (error instanceof WaitingForServiceError) return { kind: 'waiting', message }
  if (error instanceof TransitionRefusedError) return { kind: 'refused', message }
  if (error instanceof ProviderError) {
    return { kind: error.kind, message, ...(error.eventType ? { eventType: error.eventType } : {}) }
  }
  return { kind: 'internal', message }
}
