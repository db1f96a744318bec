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
  state: 'running' | 'starting' | 'exited' | 'unhealthy' | 'missing'
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
