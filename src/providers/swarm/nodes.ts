import type Docker from 'dockerode'
import type { ResourceDemand } from '../../domain/resources.ts'
import { SWARM_FILTER } from './labels.ts'
import type { SwarmNode, SwarmTask } from './tasks.ts'

// The swarm's nodes, for what berth decides itself: where a replica with local volumes is pinned,
// which node label value a spread replica goes to, and how much the cluster has at all.

export const usable = (node: SwarmNode) =>
  node.Status?.State === 'ready' && node.Spec?.Availability === 'active'

/** The usable node with these labels that runs the fewest of berth's tasks, or null. */
export async function leastBusyNode(
  docker: Docker,
  known: Iterable<SwarmNode>,
  nodeLabels: Record<string, string>,
): Promise<string | null> {
  const nodes = [...known].filter(
    (node) => usable(node) && Object.entries(nodeLabels).every(([k, v]) => node.Spec?.Labels?.[k] === v),
  )
  if (nodes.length === 0) return null
  const services = await docker.listServices({ filters: { label: [SWARM_FILTER] } })
  const tasks =
    services.length === 0
      ? []
      : ((await docker.listTasks({
          filters: { service: services.map((s) => s.ID!), 'desired-state': ['running'] },
        })) as unknown as SwarmTask[])
  const load = new Map<string, number>()
  for (const task of tasks) if (task.NodeID) load.set(task.NodeID, (load.get(task.NodeID) ?? 0) + 1)
  nodes.sort((a, b) => (load.get(a.ID) ?? 0) - (load.get(b.ID) ?? 0) || a.ID.localeCompare(b.ID))
  return nodes[0]!.ID
}

/**
 * The value of node label `key` a replica goes to: the values the usable nodes carry, sorted, dealt
 * out in turn (replica 0 to the first, 1 to the second, ...), so replicas spread evenly over them.
 * Undefined when no usable node has the label (the replica then waits, constrained to nothing
 * that exists, rather than running unspread).
 */
export function spreadValueOf(nodes: Iterable<SwarmNode>, key: string, replica: number): string | undefined {
  const values = [...new Set([...nodes].filter(usable).map((n) => n.Spec?.Labels?.[key]))]
    .filter((v) => v !== undefined)
    .sort()
  return values.length === 0 ? undefined : values[replica % values.length]
}

/**
 * The usable nodes' CPUs and memory together: more than any one deployment can ever get (what
 * fits node by node is `placeOnSwarm`'s question).
 */
export async function clusterSize(docker: Docker): Promise<ResourceDemand | null> {
  const nodes = ((await docker.listNodes()) as unknown as SwarmNode[]).filter(usable)
  let nanoCpus = 0
  let memoryBytes = 0
  for (const node of nodes) {
    nanoCpus += node.Description?.Resources?.NanoCPUs ?? 0
    memoryBytes += node.Description?.Resources?.MemoryBytes ?? 0
  }
  if (nanoCpus === 0 || memoryBytes === 0) return null
  return {
    milliCpus: Math.floor(nanoCpus / 1e6),
    memoryMb: Math.floor(memoryBytes / 2 ** 20),
  }
}
