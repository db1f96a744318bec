import type { Config } from '../config/schema.ts'
import type { DeploymentRow } from '../db/deployment-rows.ts'
import { backoffDelayMs } from '../domain/backoff.ts'
import { canTransition } from '../domain/lifecycle.ts'
import { capacityAt, type FencedChange, SUCCEEDED } from './moves.ts'

// The pure decision after a step failed: fail the deployment when the failure is permanent, else
// retry with jittered backoff. Like decide(), it reads no clock; the jitter comes in as a number.

/** Why a step failed, as the executor classifies what was thrown. */
export interface StepFailure {
  /**
   * `permanent`: the provider will refuse this again (a bad image, no GPU); `transient`: try again;
   * `unavailable`: the backend does not answer; `refused`: the state machine refused a move;
   * `cancelled`: the desired state changed while a deploy was applied; `waiting`: an apply stopped
   * before services whose dependencies are not ready yet; `internal`: anything else.
   */
  kind: 'permanent' | 'transient' | 'unavailable' | 'refused' | 'cancelled' | 'internal' | 'waiting'
  message: string
  /** The event type a permanent failure is recorded as (`image_pull_failed`, …); `failed` otherwise. */
  eventType?: string
}

/** How soon an apply waiting for a service others depend on looks again. */
const WAITING_LOOK_MS = 1000

/** Statuses whose workload is (supposed to be) up: an unreachable provider leaves them `degraded`. */
const upStatuses = new Set(['starting', 'running', 'unhealthy'])

export function decideAfterFailure(
  row: DeploymentRow,
  failure: StepFailure,
  now: Date,
  settings: Pick<Config['reconciler'], 'backoffBaseMs' | 'backoffMaxMs' | 'maxRetrySeconds'>,
  /** A number in [0, 1) that spreads retries of deployments failing together. */
  jitter: number,
): FencedChange {
  if (failure.kind === 'cancelled') {
    // The next step stops or deletes whatever the cancelled apply created.
    return { events: [{ type: 'deploy_cancelled', message: failure.message }], nextInMs: 0 }
  }
  if (failure.kind === 'waiting') {
    // Not a failure: the apply goes on shortly (its own deadline fails it if it never can). Said
    // once per deploy, not at every look.
    return {
      patch: { attempts: row.attempts + 1 },
      events: row.attempts === 0 ? [{ type: 'waiting_for_service', message: failure.message }] : [],
      nextInMs: WAITING_LOOK_MS,
    }
  }
  const canFail = canTransition(row.status, 'failed') && row.desiredState === 'running'
  const fail = (message: string, eventType = 'failed'): FencedChange => ({
    // The start that failed is used up: only a new start or restart (a new generation) tries again.
    patch: {
      status: 'failed',
      stopReason: 'failed',
      error: message,
      appliedRestartGeneration: row.restartGeneration,
      ...SUCCEEDED,
      ...capacityAt('failed'),
    },
    events: [{ type: eventType, status: 'failed', message }],
    // At once: the next step rolls it back (its instances removed, host ports freed).
    nextInMs: 0,
  })
  if (failure.kind === 'permanent' && canFail) return fail(failure.message, failure.eventType)
  // Errors that keep coming (not a provider that does not answer: that is an outage, which a
  // running deployment waits out) are retried only so long, then fail with the last reason.
  const retryingFor = row.retryingSince ? (now.getTime() - row.retryingSince.getTime()) / 1000 : 0
  if (failure.kind !== 'unavailable' && canFail && retryingFor > settings.maxRetrySeconds) {
    return fail(`still failing after ${Math.round(retryingFor)}s of retries: ${failure.message}`)
  }
  const attempts = row.attempts + 1
  const unavailable = failure.kind === 'unavailable'
  // An unreachable backend is recorded once per outage: a running deployment is `degraded` (it
  // keeps its status: its containers most likely still run), anything else waits with
  // `provider_unavailable`. Other errors are recorded on the first attempt and every tenth.
  const record = unavailable ? attempts === 1 : attempts === 1 || attempts % 10 === 0
  const type = unavailable
    ? upStatuses.has(row.status)
      ? 'degraded'
      : 'provider_unavailable'
    : 'reconcile_error'
  return {
    patch: { attempts, ...(row.retryingSince === null ? { retryingSince: now } : {}) },
    events: record ? [{ type, message: failure.message, data: { attempt: attempts } }] : [],
    nextInMs: backoffDelayMs(
      attempts - 1,
      { baseMs: settings.backoffBaseMs, maxMs: settings.backoffMaxMs },
      () => jitter,
    ),
  }
}
