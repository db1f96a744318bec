import type { DeploymentSpec } from './spec.ts'

// A fleet node as the scheduler and its operator see it. Whether it is heard from (`online` or
// `lost`) and whether it takes work (`active`, `cordoned`, `draining`) are separate facts; a node's
// one status shows the one that matters most: lost first, then cordoned or draining, else online.

export const nodeConnectivities = ['online', 'lost'] as const
export type NodeConnectivity = (typeof nodeConnectivities)[number]

export const nodeSchedulingStates = ['active', 'cordoned', 'draining'] as const
export type NodeSchedulingState = (typeof nodeSchedulingStates)[number]

export type NodeStatus = 'online' | 'lost' | 'cordoned' | 'draining'

export function nodeStatusOf(connectivity: NodeConnectivity, scheduling: NodeSchedulingState): NodeStatus {
  if (connectivity === 'lost') return 'lost'
  return scheduling === 'active' ? 'online' : scheduling
}

/** A node's size, or what of it is offered to berth: integers, CPUs in thousandths. */
export interface NodeResources {
  milliCpus: number
  memoryMb: number
  diskMb: number
  gpus: Array<{ model: string; count: number }>
}

/** An instance an agent reports, as it saw it on its engine. */
export interface ReportedInstance {
  deploymentId: string
  replica: number
  /** The assignment's generation the instance was created for (a newer one recreates it). */
  generation: number
  /** `failed`: the agent could not create or start it; `error` says why. */
  state: 'created' | 'running' | 'exited' | 'stopped' | 'failed'
  exitCode?: number
  oomKilled?: boolean
  startedAt?: string
  /** Where each published port answers, on the node's public host. */
  ports?: Array<{ containerPort: number; protocol: 'tcp' | 'udp'; host: string; port: number }>
  error?: { kind: 'permanent' | 'transient'; message: string; eventType?: NodeFailureEvent }
}

/**
 * The event types a node's failure report may name; any other is refused, so a node cannot write
 * what it likes into a tenant's event log.
 */
export const NODE_FAILURE_EVENTS = [
  'image_pull_failed',
  'name_conflict',
  'volume_conflict',
  'network_conflict',
  'gpu_unavailable',
] as const
export type NodeFailureEvent = (typeof NODE_FAILURE_EVENTS)[number]

/** What one deployment's replicas on a node use, summed, as the agent last sampled it. */
export interface ReportedUsage {
  deploymentId: string
  cpuPercent: number
  memoryBytes: number
  networkRxBytes: number
  networkTxBytes: number
}

/** The statement an enrollment message carries: a wallet shows it to the person signing. */
export const ENROLL_STATEMENT = 'Enroll this machine as a berth fleet node run by this wallet.'

/** Resources of berth's own signed messages; a sign-in message never carries one. */
export const BERTH_RESOURCE = 'urn:berth:'

/**
 * The resource naming the agent's key in an enrollment message. Sign-in refuses any message with
 * the enrollment statement or a berth resource, so a signature given to enroll a node can never be
 * turned into a session.
 */
export const AGENT_KEY_RESOURCE = `${BERTH_RESOURCE}agent-key:ed25519:`

/** One replica a node is to run, as its agent receives it. */
export interface Assignment {
  deploymentId: string
  ownerId: string
  replica: number
  /** An instance created for an older generation is replaced. */
  generation: number
  volumeGeneration: number
  spec: DeploymentSpec
  /** The deployment is stopped: the node keeps the instance stopped, with its volumes. */
  stopped: boolean
}

/**
 * What an agent signs to open its assignment stream: the node and the time, so a captured
 * signature opens nothing once the clock-skew window has passed.
 */
export const assignmentStreamMessage = (nodeId: string, timestamp: string) =>
  `berth-assignments ${nodeId} ${timestamp}`

/**
 * How long after a node is lost its replicas move elsewhere: the configured delay, doubled for each
 * earlier loss of the node, up to 32 times it (a node that keeps dropping out is given up on sooner
 * than it is waited for, but never waited for forever).
 */
export function rescheduleDelayMs(baseSeconds: number, lossCount: number): number {
  return baseSeconds * 1000 * 2 ** Math.min(Math.max(lossCount - 1, 0), 5)
}
