import { BerthError } from './errors.ts'

// The deployment state machine as one explicit table. Anything not listed here is
// refused: `assertTransition` throws and the caller logs the refusal.

export const statuses = [
  'pending',
  'awaiting_payment',
  'scheduled',
  'deploying',
  'starting',
  'running',
  'unhealthy',
  'stopping',
  'stopped',
  'failed',
  'deleting',
  'deleted',
] as const
export type Status = (typeof statuses)[number]

export const desiredStates = ['running', 'stopped', 'deleted'] as const
export type DesiredState = (typeof desiredStates)[number]

/** What a user (or berth on its own) can ask of a deployment after creating it. */
export const intents = ['stop', 'start', 'restart', 'delete'] as const
export type Intent = (typeof intents)[number]

export const stopReasons = [
  'user',
  'out_of_funds',
  'nft_transferred',
  'expired',
  'node_lost',
  'failed',
] as const
export type StopReason = (typeof stopReasons)[number]

/**
 * What is left to do after a bound NFT changed hands: remove the previous holder's instances and
 * volumes (`fresh`), or remove the instances and keep the volumes for the new holder (`carry`).
 */
export const handoverKinds = ['fresh', 'carry'] as const
export type Handover = (typeof handoverKinds)[number]

/**
 * Why a deployment that should start waits in `pending`: its provider has no room
 * (`insufficient_capacity`), or no fleet node passes the scheduler's filters (`no_node_fits`).
 */
export const waitReasons = ['insufficient_capacity', 'no_node_fits'] as const
export type WaitReason = (typeof waitReasons)[number]

/** Statuses in which a deployment holds none of its provider's capacity. */
export const restingStatuses = ['stopped', 'failed', 'deleted'] as const

export const transitions: Readonly<Record<Status, readonly Status[]>> = {
  // pending is also where a start waits for its provider's capacity (wait_reason).
  pending: ['awaiting_payment', 'scheduled', 'stopping', 'deleting', 'failed'],
  awaiting_payment: ['scheduled', 'pending', 'stopping', 'deleting', 'failed'],
  scheduled: ['deploying', 'stopping', 'deleting', 'failed'],
  // deploying → starting once the provider has created and started every replica.
  deploying: ['starting', 'stopping', 'deleting', 'failed'],
  // starting → running only after the health check held for the stability window.
  starting: ['running', 'unhealthy', 'deploying', 'stopping', 'deleting', 'failed'],
  // running → deploying when an instance vanished and must be applied again; → starting on restart.
  running: ['unhealthy', 'starting', 'deploying', 'stopping', 'deleting', 'failed'],
  unhealthy: ['running', 'starting', 'deploying', 'stopping', 'deleting', 'failed'],
  stopping: ['stopped', 'deleting', 'failed'],
  stopped: ['scheduled', 'awaiting_payment', 'pending', 'deleting'],
  failed: ['scheduled', 'awaiting_payment', 'pending', 'deleting'],
  deleting: ['deleted'],
  deleted: [],
}

export function canTransition(from: Status, to: Status): boolean {
  return transitions[from].includes(to)
}

export class TransitionRefusedError extends BerthError {
  constructor(
    readonly from: Status,
    readonly to: Status,
  ) {
    super('conflict', `transition ${from} → ${to} is not in the state machine`)
    this.name = 'TransitionRefusedError'
  }
}

export function assertTransition(from: Status, to: Status): void {
  if (!canTransition(from, to)) throw new TransitionRefusedError(from, to)
}

/** Statuses in which the deployment has reached what its desired state asks for. */
export function isSettled(status: Status, desired: DesiredState): boolean {
  if (desired === 'running') return status === 'running' || status === 'failed'
  if (desired === 'stopped') return status === 'stopped' || status === 'failed'
  return status === 'deleted'
}

export const progressStages = [
  'queued',
  'scheduling',
  'pulling',
  'creating',
  'starting',
  'health-checking',
  'running',
] as const
export type ProgressStage = (typeof progressStages)[number]

export const stagePercent: Readonly<Record<ProgressStage, number>> = {
  queued: 0,
  scheduling: 10,
  pulling: 30,
  creating: 50,
  starting: 70,
  'health-checking': 90,
  running: 100,
}
