import type Docker from 'dockerode'
import { translating } from '../docker/errors.ts'
import { volumesOf } from '../docker/volumes.ts'
import { type PlacementVerdict, ProviderError, type SingleImageTarget } from '../provider.ts'
import { deploymentFilter } from './labels.ts'
import { leastBusyNode, spreadValueOf, usable } from './nodes.ts'
import { readPin, savePin } from './pins.ts'
import { fitReplicas, type NodeRoom } from './placement.ts'
import { placementConstraintsOf, reservationOf } from './service-spec.ts'
import type { SwarmNode, SwarmService, SwarmTask } from './tasks.ts'

// Where each replica may run: its spread value, its pin (local volumes), and, before a start is
// admitted, whether the replicas fit on the nodes as they are now.

export interface PlaceSettings {
  /** The operator's constraints, which every task gets. */
  constraints: string[]
  /** `local` pins each replica with volumes to one node. */
  volumeDriver: string
}

export function spreadFor(
  nodes: Iterable<SwarmNode>,
  key: string | undefined,
  replica: number,
): { spreadValue?: string } {
  if (!key) return {}
  // No node has the label: a value no node has, so the replica waits instead of running unspread.
  return { spreadValue: spreadValueOf(nodes, key, replica) ?? 'none' }
}

const keepsLocalVolumes = (target: SingleImageTarget, settings: PlaceSettings) =>
  settings.volumeDriver === 'local' && volumesOf(target.spec).length > 0

/**
 * A replica with volumes on the `local` driver keeps its data on one node: it is pinned there (a
 * placement constraint) from its first task on, so a restart never starts it empty elsewhere. The
 * pin outlives the service (pins.ts): a rolled-back deployment starts again where its data is.
 */
export async function pinFor(
  docker: Docker,
  nodes: Map<string, SwarmNode>,
  settings: PlaceSettings,
  target: SingleImageTarget,
  replica: number,
  existing: SwarmService | undefined,
): Promise<{ pinnedNode?: string }> {
  if (!keepsLocalVolumes(target, settings)) return {}
  const pin = { id: target.id, ownerId: target.ownerId, volumeGeneration: target.volumeGeneration ?? 0 }
  const pinned = await readPin(docker, pin.id, pin.volumeGeneration, replica)
  if (pinned) {
    // A node removed from the swarm took the volumes with it; one that is only down comes back.
    if (!nodes.has(pinned)) {
      throw new ProviderError(
        'permanent',
        `replica ${replica}'s volumes are on node ${pinned}, which has left the swarm`,
        { eventType: 'volumes_unreachable' },
      )
    }
    return { pinnedNode: pinned }
  }
  // A service made before pins were recorded carries its pin only as a constraint.
  const constrained = existing?.Spec.TaskTemplate?.Placement?.Constraints?.find((c) =>
    c.startsWith('node.id=='),
  )
  const node = constrained
    ? constrained.slice('node.id=='.length)
    : await leastBusyNode(docker, nodes.values(), target.spec.placement?.nodeLabels ?? {})
  // Never unpinned: started anywhere, its data would be wherever the next start is not.
  if (!node)
    throw new ProviderError('transient', "no usable node with the spec's node labels to keep its volumes on")
  return { pinnedNode: await savePin(docker, pin, replica, node) }
}

interface TaskReservation {
  ServiceID: string
  NodeID?: string
  Spec?: { Resources?: { Reservations?: { NanoCPUs?: number; MemoryBytes?: number } } }
}

/**
 * Whether the deployment's replicas fit on the usable nodes, after what every other task that is
 * meant to run there (berth's or not) reserves. The deployment's own tasks do not count: a start
 * replaces them.
 */
export async function placeOnSwarm(
  docker: Docker,
  settings: PlaceSettings,
  target: SingleImageTarget,
): Promise<PlacementVerdict> {
  return translating(`place ${target.id}`, async () => {
    const nodes = ((await docker.listNodes()) as unknown as SwarmNode[]).filter(usable)
    const own = new Set(
      (
        (await docker.listServices({
          filters: { label: deploymentFilter(target.id) },
        })) as unknown as SwarmService[]
      ).map((s) => s.ID),
    )
    const tasks = (await docker.listTasks({
      filters: { 'desired-state': ['running'] },
    })) as unknown as Array<SwarmTask & TaskReservation>
    const reserved = new Map<string, { cpu: number; memory: number }>()
    for (const task of tasks) {
      if (!task.NodeID || own.has(task.ServiceID)) continue
      const r = task.Spec?.Resources?.Reservations
      const sum = reserved.get(task.NodeID) ?? { cpu: 0, memory: 0 }
      sum.cpu += r?.NanoCPUs ?? 0
      sum.memory += r?.MemoryBytes ?? 0
      reserved.set(task.NodeID, sum)
    }
    const rooms: NodeRoom[] = nodes.map((node) => ({
      id: node.ID,
      hostname: node.Description?.Hostname ?? '',
      role: node.Spec?.Role === 'manager' ? 'manager' : 'worker',
      labels: node.Spec?.Labels ?? {},
      freeNanoCpus: (node.Description?.Resources?.NanoCPUs ?? 0) - (reserved.get(node.ID)?.cpu ?? 0),
      freeMemoryBytes: (node.Description?.Resources?.MemoryBytes ?? 0) - (reserved.get(node.ID)?.memory ?? 0),
    }))
    const reservation = reservationOf(target.spec)
    const replicas = []
    for (let replica = 0; replica < target.spec.replicas; replica++) {
      const pinnedNode = keepsLocalVolumes(target, settings)
        ? ((await readPin(docker, target.id, target.volumeGeneration ?? 0, replica)) ?? undefined)
        : undefined
      const constraints = placementConstraintsOf({
        spec: target.spec,
        constraints: settings.constraints,
        ...spreadFor(nodes, target.spec.placement?.spread, replica),
        ...(pinnedNode ? { pinnedNode } : {}),
      })
      replicas.push({ ...reservation, constraints })
    }
    return fitReplicas(rooms, replicas)
  })
}
