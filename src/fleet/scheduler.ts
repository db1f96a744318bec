import type { Db, Tx } from '../db/client.ts'
import { numberedSql, queryRows } from '../db/client.ts'
import type { NodeResources } from '../domain/node.ts'
import {
  type CandidateNode,
  chooseNode,
  type PlacementFilter,
  type ReplicaDemand,
} from '../domain/placement.ts'
import type { Nodes } from './nodes.ts'
import { removePlacements } from './placements.ts'

// Places a deployment's replicas on fleet nodes. The choice is made on a snapshot of the fleet;
// the chosen node's row is then locked and its room checked again against what is reserved now,
// and the placement written in that transaction. Two schedulers that chose the same node take
// turns on its lock, and the second sees the first one's placement: a node is never overbooked.
// One that finds its choice gone full chooses again from a fresh snapshot.

export interface PlacementRequest {
  deploymentId: string
  ownerId: string
  replicas: number
  /** What each replica needs. */
  demand: ReplicaDemand
  /** The generation new placements start at (the deployment's restart generation). */
  generation?: number
}

export type ReplicaPlacement = { replica: number } & (
  | { placed: true; nodeId: string; reason: string; existing: boolean }
  | { placed: false; failed: PlacementFilter; reason: string }
)

/** The fleet as one `place()` call last read it, with its own placements added since. */
interface Snapshot {
  candidates?: CandidateNode[]
}

/** Adds a replica just placed on the node to the snapshot's view of it. */
function holdOn(node: CandidateNode, demand: ReplicaDemand): void {
  const gpus = demand.gpus > 0 ? [{ model: demand.gpuModel ?? '', count: demand.gpus }] : []
  node.reserved = {
    milliCpus: node.reserved.milliCpus + demand.milliCpus,
    memoryMb: node.reserved.memoryMb + demand.memoryMb,
    diskMb: node.reserved.diskMb + demand.diskMb,
    gpus: [...node.reserved.gpus, ...gpus],
  }
  node.sameDeploymentReplicas++
}

/** Choices that lost their node to a concurrent placement before trying elsewhere gives up. */
const MAX_ATTEMPTS = 8

interface Reserved {
  node_id: string
  milli_cpus: string | number
  memory_mb: string | number
  disk_mb: string | number
  gpus: Array<{ model: string | null; count: number }> | null
}

const RESERVED = `
  select node_id, sum(milli_cpus) as milli_cpus, sum(memory_mb) as memory_mb, sum(disk_mb) as disk_mb,
    jsonb_agg(jsonb_build_object('model', gpu_model, 'count', gpus)) filter (where gpus > 0) as gpus
  from fleet_placements`

const reservedOf = (row: Reserved | undefined): NodeResources => ({
  milliCpus: Number(row?.milli_cpus ?? 0),
  memoryMb: Number(row?.memory_mb ?? 0),
  diskMb: Number(row?.disk_mb ?? 0),
  gpus: (row?.gpus ?? []).map((g) => ({ model: g.model ?? '', count: g.count })),
})

export function createScheduler(
  db: Db,
  nodes: Pick<Nodes, 'list'>,
  minUptimeBasisPoints: number,
  now: () => Date = () => new Date(),
) {
  /** The fleet as the scheduler sees it for one deployment: every node with what it holds. */
  const candidatesFor = async (request: PlacementRequest): Promise<CandidateNode[]> => {
    const [views, reserved, spread] = await Promise.all([
      nodes.list(),
      queryRows<Reserved>(db, numberedSql(`${RESERVED} group by node_id`, [])),
      queryRows<{ node_id: string; same_deployment: string | number; same_owner: string | number }>(
        db,
        numberedSql(
          `select node_id, count(*) filter (where deployment_id = $1) as same_deployment,
             count(distinct deployment_id) filter (where owner_id = $2 and deployment_id <> $1) as same_owner
           from fleet_placements group by node_id`,
          [request.deploymentId, request.ownerId],
        ),
      ),
    ])
    const reservedByNode = new Map(reserved.map((r) => [r.node_id, r]))
    const spreadByNode = new Map(spread.map((s) => [s.node_id, s]))
    return views.map((view) => ({
      id: view.id,
      connectivity: view.connectivity,
      scheduling: view.scheduling,
      labels: view.labels,
      allocatable: view.allocatable,
      reserved: reservedOf(reservedByNode.get(view.id)),
      uptimeBasisPoints7d: Math.round(view.uptimePercent['7d'] * 100),
      sameDeploymentReplicas: Number(spreadByNode.get(view.id)?.same_deployment ?? 0),
      sameOwnerDeployments: Number(spreadByNode.get(view.id)?.same_owner ?? 0),
    }))
  }

  /** Writes the placement if the node still has room once locked; false when it does not. */
  const placeOn = async (
    tx: Tx,
    request: PlacementRequest,
    replica: number,
    choice: CandidateNode,
    reason: string,
  ) => {
    const [locked] = await queryRows<{ allocatable: NodeResources | null }>(
      tx,
      numberedSql(
        `select allocatable from fleet_nodes
         where id = $1 and connectivity = 'online' and scheduling = 'active' and removed_at is null for update`,
        [choice.id],
      ),
    )
    if (!locked) return false
    const [heldNow] = await queryRows<Reserved>(
      tx,
      numberedSql(`${RESERVED} where node_id = $1 group by node_id`, [choice.id]),
    )
    const fresh = { ...choice, allocatable: locked.allocatable, reserved: reservedOf(heldNow) }
    if (!chooseNode([fresh], request.demand, 0).placed) return false
    const { demand } = request
    const at = now()
    // A span some older process left open ends here: a replica is on one node at a time.
    await tx.execute(
      numberedSql(
        `update fleet_placement_spans set ended_at = $3
         where deployment_id = $1 and replica = $2 and ended_at is null`,
        [request.deploymentId, replica, at],
      ),
    )
    await tx.execute(
      numberedSql(
        'insert into fleet_placement_spans (deployment_id, replica, node_id, started_at) values ($1, $2, $3, $4)',
        [request.deploymentId, replica, choice.id, at],
      ),
    )
    await tx.execute(
      numberedSql(
        `insert into fleet_placements (deployment_id, replica, node_id, owner_id, milli_cpus, memory_mb, disk_mb, gpus, gpu_model, placed_at, reason, generation)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $12, $10, $11)`,
        [
          request.deploymentId,
          replica,
          choice.id,
          request.ownerId,
          demand.milliCpus,
          demand.memoryMb,
          demand.diskMb,
          demand.gpus,
          demand.gpuModel ?? null,
          reason,
          request.generation ?? 0,
          at,
        ],
      ),
    )
    return true
  }

  return {
    /**
     * Places every replica not placed yet (replicas already placed keep their node). A replica that
     * fits nowhere is answered with the filter that failed; the caller waits and tries again.
     */
    async place(request: PlacementRequest): Promise<ReplicaPlacement[]> {
      const existing = await queryRows<{ replica: number; node_id: string; reason: string }>(
        db,
        numberedSql('select replica, node_id, reason from fleet_placements where deployment_id = $1', [
          request.deploymentId,
        ]),
      )
      const placedAlready = new Map(existing.map((p) => [p.replica, p]))
      const results: ReplicaPlacement[] = []
      // The fleet is read once for all of the deployment's replicas: each placement is added to
      // this snapshot; it is read again only when a placement lost its node to another scheduler.
      const snapshot: Snapshot = {}
      for (let replica = 0; replica < request.replicas; replica++) {
        const known = placedAlready.get(replica)
        if (known) {
          results.push({ replica, placed: true, nodeId: known.node_id, reason: known.reason, existing: true })
          continue
        }
        results.push(await placeOne(request, replica, snapshot))
      }
      return results
    },

    /** Frees what a deployment's replicas hold (it stopped, failed or was deleted). */
    async release(deploymentId: string): Promise<void> {
      await removePlacements(
        db,
        'delete from fleet_placements p where p.deployment_id = $1',
        [deploymentId],
        now(),
      )
    },
  }

  async function placeOne(
    request: PlacementRequest,
    replica: number,
    snapshot: Snapshot,
  ): Promise<ReplicaPlacement> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      snapshot.candidates ??= await candidatesFor(request)
      const choice = chooseNode(snapshot.candidates, request.demand, minUptimeBasisPoints)
      if (!choice.placed) return { replica, placed: false, failed: choice.failed, reason: choice.reason }
      const node = snapshot.candidates.find((c) => c.id === choice.nodeId)!
      const placed = await db.transaction((tx) => placeOn(tx, request, replica, node, choice.reason))
      if (placed) {
        holdOn(node, request.demand)
        return { replica, placed: true, nodeId: node.id, reason: choice.reason, existing: false }
      }
      snapshot.candidates = undefined
    }
    return {
      replica,
      placed: false,
      failed: 'capacity',
      reason: 'the fleet filled up while this replica was being placed',
    }
  }
}

export type Scheduler = ReturnType<typeof createScheduler>
