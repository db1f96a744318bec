import type { NodeConnectivity, NodeResources, NodeSchedulingState } from './node.ts'

// Choosing a fleet node for one replica: first every node that cannot take it is filtered out, for
// a reason; then the ones left are scored and the best wins. Pure: the caller reads the nodes and
// what is reserved on them, and writes the choice with its reservation in one transaction.
//
// Filters, in order (a replica that fits nowhere is told the furthest one any node got past):
//   online        the node is heard from (not lost, not removed)
//   schedulable   not cordoned or draining
//   labels        it has every label the replica asks for, with that value
//   uptime        its uptime over 7 days is at least the minimum (fleet/uptime-view.ts: a node
//                 younger than 7 days is measured since its first heartbeat, over at least an hour)
//   capacity      what it offers less what is reserved holds the replica's CPUs, memory, disk, GPUs
// Score, higher is better, in basis points so that it stays an integer:
//   uptime (0–10,000) + free share of CPU and memory after the replica (0–10,000 each)
//   − 20,000 per replica of the same deployment already on the node (replicas spread first)
//   − 2,000 per other deployment of the same owner on the node (then an owner's deployments)
// Ties go to the node with the lower id, so the same inputs always give the same answer.

export interface CandidateNode {
  id: string
  connectivity: NodeConnectivity
  scheduling: NodeSchedulingState
  labels: Record<string, string>
  allocatable: NodeResources | null
  /** What placements on the node already hold. */
  reserved: NodeResources
  uptimeBasisPoints7d: number
  /** Replicas of the deployment being placed already on this node. */
  sameDeploymentReplicas: number
  /** Other deployments of the same owner on this node. */
  sameOwnerDeployments: number
}

export interface ReplicaDemand {
  milliCpus: number
  memoryMb: number
  diskMb: number
  /** GPUs of any model, or of `gpuModel` when set. */
  gpus: number
  gpuModel?: string
  /** Node labels the replica needs, each with its value. */
  nodeLabels: Record<string, string>
}

export const placementFilters = ['online', 'schedulable', 'labels', 'uptime', 'capacity'] as const
export type PlacementFilter = (typeof placementFilters)[number]

export type Placement =
  | { placed: true; nodeId: string; score: number; reason: string }
  | { placed: false; failed: PlacementFilter; reason: string }

const SPREAD_PENALTY = 20_000
const OWNER_SPREAD_PENALTY = 2_000

export function chooseNode(
  nodes: readonly CandidateNode[],
  demand: ReplicaDemand,
  minUptimeBasisPoints: number,
): Placement {
  let furthest = -1
  let best: { node: CandidateNode; score: number } | undefined
  for (const node of nodes) {
    const passed = filtersPassed(node, demand, minUptimeBasisPoints)
    furthest = Math.max(furthest, passed)
    if (passed < placementFilters.length) continue
    const score = scoreOf(node, demand)
    if (!best || score > best.score || (score === best.score && node.id < best.node.id))
      best = { node, score }
  }
  if (!best) {
    const failed = placementFilters[Math.max(0, furthest)]!
    return { placed: false, failed, reason: refusalOf(failed, nodes.length, demand, minUptimeBasisPoints) }
  }
  const { node, score } = best
  return {
    placed: true,
    nodeId: node.id,
    score,
    reason: `uptime ${node.uptimeBasisPoints7d / 100}% over 7 days, ${freeAfter(node, demand).milliCpus / 1000} CPUs and ${freeAfter(node, demand).memoryMb} MB free after it, ${node.sameDeploymentReplicas} replica(s) of this deployment there already`,
  }
}

/** How many filters the node passes, in order (all of them: it can take the replica). */
function filtersPassed(node: CandidateNode, demand: ReplicaDemand, minUptime: number): number {
  const checks: Array<() => boolean> = [
    () => node.connectivity === 'online',
    () => node.scheduling === 'active',
    () => Object.entries(demand.nodeLabels).every(([key, value]) => node.labels[key] === value),
    () => node.uptimeBasisPoints7d >= minUptime,
    () => fits(node, demand),
  ]
  let passed = 0
  while (passed < checks.length && checks[passed]!()) passed++
  return passed
}

function freeAfter(node: CandidateNode, demand: ReplicaDemand) {
  const offered = node.allocatable
  return {
    milliCpus: (offered?.milliCpus ?? 0) - node.reserved.milliCpus - demand.milliCpus,
    memoryMb: (offered?.memoryMb ?? 0) - node.reserved.memoryMb - demand.memoryMb,
    diskMb: (offered?.diskMb ?? 0) - node.reserved.diskMb - demand.diskMb,
  }
}

const gpusOf = (resources: NodeResources | null, model: string | undefined) =>
  (resources?.gpus ?? [])
    .filter((g) => model === undefined || g.model === model)
    .reduce((n, g) => n + g.count, 0)

function fits(node: CandidateNode, demand: ReplicaDemand): boolean {
  const free = freeAfter(node, demand)
  if (free.milliCpus < 0 || free.memoryMb < 0 || free.diskMb < 0) return false
  if (demand.gpus === 0) return true
  // Replicas that asked for any model hold GPUs of no model in particular: they count against
  // the node's total, and a replica asking for a model needs both that many of its model and that
  // many in all free.
  const freeInAll = gpusOf(node.allocatable, undefined) - gpusOf(node.reserved, undefined)
  const freeOfModel = gpusOf(node.allocatable, demand.gpuModel) - gpusOf(node.reserved, demand.gpuModel)
  return freeInAll >= demand.gpus && freeOfModel >= demand.gpus
}

function scoreOf(node: CandidateNode, demand: ReplicaDemand): number {
  const free = freeAfter(node, demand)
  const share = (left: number, total: number | undefined) => (total ? Math.floor((left * 10_000) / total) : 0)
  return (
    node.uptimeBasisPoints7d +
    share(free.milliCpus, node.allocatable?.milliCpus) +
    share(free.memoryMb, node.allocatable?.memoryMb) -
    SPREAD_PENALTY * node.sameDeploymentReplicas -
    OWNER_SPREAD_PENALTY * node.sameOwnerDeployments
  )
}

function refusalOf(failed: PlacementFilter, count: number, demand: ReplicaDemand, minUptime: number): string {
  if (count === 0) return 'the fleet has no nodes'
  switch (failed) {
    case 'online':
      return 'no node is online'
    case 'schedulable':
      return 'every online node is cordoned or draining'
    case 'labels':
      return `no schedulable node has the labels ${Object.entries(demand.nodeLabels)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`
    case 'uptime':
      return `no matching node has ${minUptime / 100}% uptime over 7 days`
    case 'capacity':
      return `no matching node has ${demand.milliCpus / 1000} CPUs, ${demand.memoryMb} MB memory, ${demand.diskMb} MB disk${demand.gpus ? ` and ${demand.gpus} ${demand.gpuModel ?? ''} GPU(s)` : ''} free`
  }
}
