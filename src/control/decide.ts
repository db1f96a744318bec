import type { DeploymentPatch, DeploymentRow } from '../db/deployment-rows.ts'
import { type Handover, TransitionRefusedError, type WaitReason } from '../domain/lifecycle.ts'
import { checkOfIndex, healthTimingOf, instanceCountOf } from '../domain/services.ts'
import type { HealthCheckSpec } from '../domain/spec.ts'
import type { Observed } from '../providers/provider.ts'
import { supervise } from './decide-health.ts'
import {
  type DecideSettings,
  type Decision,
  type Facts,
  move,
  type ProviderEffect,
  secondsBetween,
  settle,
} from './decision.ts'
import { assessHealth, countStart, nextLookWhenHealthyMs } from './health.ts'
import { moveChange, type Passage, passage, SUCCEEDED } from './moves.ts'

// The reconciler's decision, as a pure function: given a claimed deployment, what is known about
// it so far (facts) and the time, what to do next. It reads no clock, calls no provider and
// writes nothing; the executor (step.ts) gathers the facts it asks for, runs the provider call it
// names and writes the change it returns. Taking at most one step towards the desired state, and
// deciding from what is observed, keeps a repeated step harmless.

// Every provider here places a deployment as soon as it is scheduled, so scheduling is passed
// through in the same write as the move to deploying. (A scheduler that must choose a node will
// make `scheduled` a step of its own.)
const scheduling: Passage = { status: 'scheduled', stage: 'scheduling' }
const deploying: Passage = { status: 'deploying', stage: 'pulling' }

export function decide(row: DeploymentRow, facts: Facts, now: Date, settings: DecideSettings): Decision {
  try {
    return decideUnchecked(row, facts, now, settings)
  } catch (error) {
    if (error instanceof TransitionRefusedError) return { kind: 'refused', from: error.from, to: error.to }
    throw error
  }
}

function decideUnchecked(row: DeploymentRow, facts: Facts, now: Date, settings: DecideSettings): Decision {
  const status = row.status
  if (row.desiredState === 'deleted') {
    if (status === 'deleted') return settle
    if (status === 'deleting') {
      return {
        kind: 'write',
        effect: 'remove',
        change: move(row, 'deleted', { nextInMs: null, patch: { endpoints: [] } }),
      }
    }
    return { kind: 'write', change: move(row, 'deleting') }
  }

  // Whatever is wanted next, nothing of a previous NFT holder's run is left to the new one: what
  // still runs is stopped and removed first, even if the new holder asked to start it meanwhile.
  if (row.handover) {
    if (status === 'stopped' || status === 'failed')
      return handOver(row as DeploymentRow & { handover: Handover })
    if (status !== 'stopping') {
      return {
        kind: 'write',
        change: move(row, 'stopping', { message: "stopping the previous holder's run" }),
      }
    }
  }

  if (row.desiredState === 'stopped') {
    if (status === 'failed') return rollBack
    if (status === 'stopped' || status === 'deleted') return settle
    if (status === 'stopping') {
      const { effect, patch } = endOfStop(row)
      const stopped = row.stopReason ? `stopped (${row.stopReason})` : 'stopped'
      return {
        kind: 'write',
        effect,
        change: move(row, 'stopped', {
          nextInMs: null,
          message: row.handover ? `${stopped}; ${handoverMessage[row.handover]}` : stopped,
          patch,
        }),
      }
    }
    return { kind: 'write', change: move(row, 'stopping') }
  }

  // desired: running
  if (facts.applied) return afterApply(row, facts, now, settings)
  switch (status) {
    case 'pending':
    case 'awaiting_payment':
      return begin(row, facts, now, {})
    case 'stopped':
      return begin(row, facts, now, {
        stopReason: null,
        error: null,
        ...countStart(row, now, settings.health),
      })
    case 'failed':
      // Only a start or restart asked after the failure (a new restart generation) starts it again;
      // it counts against the restart budget like any other start.
      if (row.restartGeneration > row.appliedRestartGeneration) {
        return begin(row, facts, now, {
          error: null,
          stopReason: null,
          ...countStart(row, now, settings.health),
        })
      }
      return rollBack
    case 'stopping': {
      // A start arrived while stopping: finish the stop, then start from `stopped`.
      const { effect, patch } = endOfStop(row)
      return { kind: 'write', effect, change: move(row, 'stopped', { patch }) }
    }
    case 'scheduled':
      return {
        kind: 'apply',
        start: {
          events: passage(status, [deploying]),
          patch: { deployStartedAt: now },
          deployStartedAt: now,
        },
      }
    case 'deploying':
      return { kind: 'apply', start: { events: [], patch: {}, deployStartedAt: row.deployStartedAt } }
    case 'starting':
    case 'running':
    case 'unhealthy':
      return supervise(row, facts, now, settings)
    default:
      return settle
  }
}

/** A start from rest: gated by the payment check, then a deploy through scheduled and deploying. */
function begin(row: DeploymentRow, facts: Facts, now: Date, patch: DeploymentPatch): Decision {
  if (!facts.funding) return { kind: 'need-funding' }
  if (facts.funding.admitted) {
    if (!facts.capacity) return { kind: 'need-capacity' }
    if (!facts.capacity.admitted) return waitForCapacity(row, facts.capacity, now, patch)
    const placement = facts.capacity.placement
    // A provider that chose nodes says where each replica went: the `scheduled` event tells it.
    const scheduled: Passage = placement
      ? { ...scheduling, eventType: 'scheduled', message: placement }
      : scheduling
    return {
      kind: 'apply',
      start: {
        events: passage(row.status, [scheduled, deploying]),
        patch: { deployStartedAt: now, ...patch, waitReason: null, queuedAt: null },
        deployStartedAt: now,
      },
    }
  }
  const { message, retryInMs } = facts.funding
  if (row.status === 'awaiting_payment') {
    return { kind: 'write', change: { patch: { ...SUCCEEDED }, nextInMs: retryInMs } }
  }
  return {
    kind: 'write',
    change: move(row, 'awaiting_payment', { stage: 'queued', message, nextInMs: retryInMs }),
  }
}

/**
 * A paid-for start waits in `pending` while its provider has no room, in the order starts began
 * to wait (queued_at); it says so once, when it begins to wait.
 */
function waitForCapacity(
  row: DeploymentRow,
  verdict: { waitReason: WaitReason; message: string; retryInMs: number },
  now: Date,
  patch: DeploymentPatch,
): Decision {
  const waiting: DeploymentPatch = { waitReason: verdict.waitReason, queuedAt: row.queuedAt ?? now }
  const eventType = waitingEvent[verdict.waitReason]
  // Said again when the reason changes (the capacity or the constraint that fails is another).
  const told = row.waitReason === verdict.waitReason
  if (row.status === 'pending') {
    return {
      kind: 'write',
      change: {
        patch: { ...SUCCEEDED, ...patch, ...waiting },
        events: told ? [] : [{ type: eventType, message: verdict.message }],
        nextInMs: verdict.retryInMs,
      },
    }
  }
  return {
    kind: 'write',
    change: move(row, 'pending', {
      stage: 'queued',
      eventType,
      message: verdict.message,
      patch: { ...patch, ...waiting },
      nextInMs: verdict.retryInMs,
    }),
  }
}

const waitingEvent: Record<WaitReason, string> = {
  insufficient_capacity: 'waiting_for_capacity',
  no_node_fits: 'no_node_fits',
}

/**
 * The move that ends an apply, from `deploying`: straight on to `running` when the provider's own
 * word on health (or one probe made at once) is all the spec asks for, else `starting`.
 */
function afterApply(row: DeploymentRow, facts: Facts, now: Date, settings: DecideSettings): Decision {
  const { observed, deployStartedAt } = facts.applied!
  const applied: DeploymentPatch = {
    endpoints: observed.endpoints,
    appliedRestartGeneration: row.restartGeneration,
    unhealthyStreak: 0,
  }
  const look = firstLook(observed, row.spec)
  if (look.kind === 'probe' && !facts.probe)
    return { kind: 'need-probe', of: observed, checkOf: look.checkOf }
  const healthy = look.kind === 'healthy' || (look.kind === 'probe' && facts.probe?.failed === null)
  if (healthy) {
    return {
      kind: 'write',
      change: moveChange({
        from: 'deploying',
        to: 'running',
        through: [{ status: 'starting', stage: 'health-checking' }],
        stage: 'running',
        patch: { ...applied, healthyStreak: 1, runningSince: now, startingSince: now },
        nextInMs: nextLookWhenHealthyMs(row.spec, settings.resyncSeconds * 1000),
      }),
      ...(deployStartedAt ? { deployDurationSeconds: secondsBetween(deployStartedAt, now) } : {}),
    }
  }
  return {
    kind: 'write',
    change: moveChange({
      from: 'deploying',
      to: 'starting',
      stage: 'health-checking',
      patch: { ...applied, healthyStreak: 0, startingSince: now },
    }),
  }
}

/**
 * A failed deployment is rolled back: its instances removed and their host ports freed (volumes
 * kept until it is deleted), so what failed holds nothing. Looked at again only when something
 * makes it due; releasing again then finds nothing to remove.
 */
const rollBack: Decision = {
  kind: 'write',
  effect: 'release',
  change: { patch: { ...SUCCEEDED, endpoints: [] }, nextInMs: null },
}

/**
 * The provider call that ends a stop: a plain stop keeps the instances for a later start; after an
 * NFT changed hands they are removed instead (with the volumes unless they are carried over).
 */
function endOfStop(row: DeploymentRow): { effect: ProviderEffect; patch: DeploymentPatch } {
  if (!row.handover) return { effect: 'stop', patch: {} }
  return { effect: handoverEffect[row.handover], patch: { handover: null, endpoints: [] } }
}

const handoverEffect: Record<Handover, ProviderEffect> = { fresh: 'remove', carry: 'release' }
const handoverMessage: Record<Handover, string> = {
  fresh: "the previous holder's instances and volumes were removed",
  carry: "the previous holder's instances were removed; its volumes are kept for the new holder",
}

/** A deployment at rest when its NFT changed hands: the previous holder's instances go now. */
function handOver(row: DeploymentRow & { handover: Handover }): Decision {
  return {
    kind: 'write',
    effect: handoverEffect[row.handover],
    change: {
      patch: { ...SUCCEEDED, handover: null, endpoints: [] },
      events: [
        {
          type: 'handover_completed',
          message: handoverMessage[row.handover],
        },
      ],
      nextInMs: 0,
    },
  }
}

/** The longest the probe right after an apply may take before the deployment is left `starting`. */
const FIRST_LOOK_TIMEOUT_SECONDS = 1

/**
 * Whether the instances an apply reports are enough to call the deployment running: every replica
 * runs, the spec asks for a single passing look, and that look passes: the provider's own word on
 * health, or (for a provider that cannot judge it) the spec's probe, tried once at once with a
 * short timeout. Most workloads answer by the time their container has started; one that does
 * not yet goes on to `starting` and is probed there.
 */
function firstLook(
  observed: Observed,
  spec: DeploymentRow['spec'],
):
  | { kind: 'healthy' }
  | { kind: 'not-yet' }
  | { kind: 'probe'; checkOf: (index: number) => HealthCheckSpec | undefined } {
  if (assessHealth(observed, instanceCountOf(spec)) !== 'healthy') return { kind: 'not-yet' }
  const timing = healthTimingOf(spec)
  if (!timing) return { kind: 'healthy' }
  if (timing.healthyThreshold > 1) return { kind: 'not-yet' }
  if (observed.instances.every((i) => i.health === 'healthy')) return { kind: 'healthy' }
  if (observed.instances.some((i) => i.health === 'unhealthy')) return { kind: 'not-yet' }
  return {
    kind: 'probe',
    checkOf: (index) => {
      const check = checkOfIndex(spec, index)
      return check && { ...check, timeoutSeconds: Math.min(check.timeoutSeconds, FIRST_LOOK_TIMEOUT_SECONDS) }
    },
  }
}
