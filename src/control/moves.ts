import type { DeploymentPatch } from '../db/deployment-rows.ts'
import {
  assertTransition,
  type ProgressStage,
  restingStatuses,
  type Status,
  stagePercent,
} from '../domain/lifecycle.ts'
import type { EventInput } from '../events/event-log.ts'

// How a status move becomes one fenced write: the new status and stage on the row, and one event
// per status passed through, each transition checked against the state machine. Pure: a refused
// transition throws TransitionRefusedError before anything is written.

/** What every write after a successful look sets: the run of failed attempts is over. */
export const SUCCEEDED = { attempts: 0, retryingSince: null } satisfies DeploymentPatch

/** One fenced write of a reconcile step (leases.ts carries it out). */
export interface FencedChange {
  patch?: DeploymentPatch
  events?: EventInput[]
  /** When to look next: in this many ms (0: at once), or null for never (until something makes it due). */
  nextInMs?: number | null
  /** Keep holding the lease after the write (the worker goes straight on to the next step). */
  keepLease?: boolean
}

/** A status passed through on the way to another, needing no provider work of its own. */
export interface Passage {
  status: Status
  stage: ProgressStage
  /** Recorded as this event type (`status_changed` when absent), with this message. */
  eventType?: string
  message?: string
}

export interface Move {
  /** The status moved from. */
  from: Status
  to: Status
  /** The stage shown with the new status; the row's current one when absent. */
  stage: ProgressStage
  patch?: DeploymentPatch
  message?: string
  eventType?: string
  data?: unknown
  /** When to look next (0: at once, null: never); at once when absent. */
  nextInMs?: number | null
  /**
   * Statuses passed through on the way: each is validated and recorded as its own event, but
   * written together with the final status, saving a round trip per status.
   */
  through?: Passage[]
}

/** The events of passing through these statuses from `from`, each transition validated. */
export function passage(from: Status, through: Passage[]): EventInput[] {
  let at = from
  return through.map(({ status, stage, eventType, message }) => {
    assertTransition(at, status)
    at = status
    return {
      type: eventType ?? 'status_changed',
      status,
      stage,
      percent: stagePercent[stage],
      ...(message ? { message } : {}),
    }
  })
}

/**
 * At rest a deployment gives back its provider's capacity (it is admitted again to start); and one
 * that stops or goes while waiting for capacity leaves the queue (a later start queues anew).
 */
export function capacityAt(status: Status): DeploymentPatch {
  if ((restingStatuses as readonly Status[]).includes(status)) {
    return { holdsCapacity: false, waitReason: null, queuedAt: null }
  }
  if (status === 'stopping' || status === 'deleting') return { waitReason: null, queuedAt: null }
  return {}
}

export function moveChange(move: Move): FencedChange {
  const passed = passage(move.from, move.through ?? [])
  assertTransition(passed.at(-1)?.status ?? move.from, move.to)
  const percent = stagePercent[move.stage]
  const event: EventInput = {
    type: move.eventType ?? 'status_changed',
    status: move.to,
    stage: move.stage,
    percent,
    ...(move.message ? { message: move.message } : {}),
    ...(move.data === undefined ? {} : { data: move.data }),
  }
  const nextInMs = move.nextInMs === undefined ? 0 : move.nextInMs
  return {
    patch: {
      status: move.to,
      stage: move.stage,
      percent,
      ...SUCCEEDED,
      ...capacityAt(move.to),
      ...move.patch,
    },
    events: [...passed, event],
    nextInMs,
    // Work due at once stays with this worker, which goes straight on to the next step.
    keepLease: nextInMs === 0,
  }
}
