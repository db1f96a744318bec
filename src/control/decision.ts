import type { Config } from '../config/schema.ts'
import type { DeploymentPatch, DeploymentRow } from '../db/deployment-rows.ts'
import type { Status, WaitReason } from '../domain/lifecycle.ts'
import type { HealthCheckSpec } from '../domain/spec.ts'
import type { EventInput } from '../events/event-log.ts'
import type { Observed } from '../providers/provider.ts'
import { type FencedChange, type Move, moveChange, SUCCEEDED } from './moves.ts'

// The vocabulary of the reconciler's pure decision (decide.ts): what it is told (facts, settings)
// and what it answers (a decision the executor in step.ts carries out).

export interface DecideSettings {
  resyncSeconds: number
  health: Config['health']
  /** The longest a start may stay `starting` (unbilled) before it fails as unhealthy. */
  maxUnbilledStartSeconds: number
}

export type FundingVerdict = { admitted: true } | { admitted: false; message: string; retryInMs: number }

/**
 * Whether the provider has room to start the deployment now (and, for one that chose nodes, where
 * its replicas went); if not, why it waits and, in a provider's queue, its place.
 */
export type CapacityVerdict =
  | { admitted: true; placement?: string }
  | { admitted: false; waitReason: WaitReason; message: string; place?: number; retryInMs: number }

/** What the executor has found out during this step; each is asked for by a `need-*` decision. */
export interface Facts {
  /** The payment gate's answer (always admitted when payments are not required). */
  funding?: FundingVerdict
  /** The provider's capacity admission (always admitted for a provider that does not know its size). */
  capacity?: CapacityVerdict
  /** What the provider reports for the deployment (null: nothing there). */
  observed?: Observed | null
  /** The outcome of probing the instances named by the last `need-probe`: the first failure, or null. */
  probe?: { failed: { replica: number; detail: string } | null }
  /** What an apply left, and when the deploy began. */
  applied?: { observed: Observed; deployStartedAt: Date | null }
}

export type ProviderEffect = 'stop' | 'remove' | 'restart' | 'release'

/**
 * Where a deploy starts: the events of passing to `deploying` (none when the step resumes a deploy
 * in `deploying`), what that move sets on the row, and when the deploy began.
 */
export interface DeployStart {
  events: EventInput[]
  patch: DeploymentPatch
  deployStartedAt: Date | null
}

export type Decision =
  | { kind: 'need-funding' }
  | { kind: 'need-capacity' }
  | { kind: 'need-observation' }
  /** `checkOf` gives each instance's check (by its index); an instance without one is not probed. */
  | { kind: 'need-probe'; of: Observed; checkOf: (index: number) => HealthCheckSpec | undefined }
  | { kind: 'apply'; start: DeployStart }
  | {
      kind: 'write'
      change: FencedChange
      /** A provider call to make before the write (the write records its outcome). */
      effect?: ProviderEffect
      /** Set when this write makes the deployment `running` after a deploy: how long it took. */
      deployDurationSeconds?: number
    }
  /** The move this would take is not in the state machine: nothing is done. */
  | { kind: 'refused'; from: Status; to: Status }

/** Nothing to do until something makes the deployment due again. */
export const settle: Decision = { kind: 'write', change: { patch: { ...SUCCEEDED }, nextInMs: null } }

/** A write moving the deployment from its current status. */
export function move(
  row: DeploymentRow,
  to: Status,
  m: Omit<Move, 'from' | 'to' | 'stage'> & Partial<Move> = {},
) {
  return moveChange({ from: row.status, to, stage: row.stage, ...m })
}

export const secondsBetween = (from: Date, to: Date) => (to.getTime() - from.getTime()) / 1000
