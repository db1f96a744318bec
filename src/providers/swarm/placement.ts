import type { PlacementVerdict } from '../provider.ts'

// Pure: whether a deployment's replicas fit on the swarm's nodes as they are now. Swarm places a
// task only where its reservation fits, so a start admitted against the cluster's total alone
// could wait forever for a node big enough. berth checks node by node before it admits a start;
// Swarm still makes the placement itself (two starts admitted at once may race for the last room:
// the loser's task waits, and its apply is retried).

export interface NodeRoom {
  id: string
  hostname: string
  role: 'manager' | 'worker'
  labels: Record<string, string>
  freeNanoCpus: number
  freeMemoryBytes: number
}

export interface ReplicaNeed {
  nanoCpus: number
  memoryBytes: number
  /** Swarm constraint expressions (`node.labels.zone==a`, `node.role!=manager`, ...). */
  constraints: string[]
}

const CONSTRAINT = /^\s*([\w.-]+)\s*(==|!=)\s*(.+?)\s*$/

/**
 * Whether a node meets one Swarm constraint. Only the node attributes berth reads are judged
 * (id, hostname, role, node labels); any other (engine labels, platform) counts as met, and Swarm
 * judges it when it places the task.
 */
export function meetsConstraint(node: NodeRoom, constraint: string): boolean {
  const parsed = CONSTRAINT.exec(constraint)
  if (!parsed) return true
  const [, key = '', operator, expected] = parsed
  let actual: string | undefined
  if (key === 'node.id') actual = node.id
  else if (key === 'node.hostname') actual = node.hostname
  else if (key === 'node.role') actual = node.role
  else if (key.startsWith('node.labels.')) actual = node.labels[key.slice('node.labels.'.length)]
  else return true
  const equal = actual === expected
  return operator === '==' ? equal : !equal
}

const cpusOf = (nano: number) => `${Math.round(nano / 1e6) / 1000} CPUs`
const mibOf = (bytes: number) => `${Math.floor(bytes / 2 ** 20)} MiB`

/**
 * Deals the replicas out in order, each to the allowed node with the most free CPU that has room
 * for it, taking that room. A replica with no such node: not placed, saying what it needs and the
 * most any allowed node has free.
 */
export function fitReplicas(nodes: readonly NodeRoom[], replicas: readonly ReplicaNeed[]): PlacementVerdict {
  const free = new Map(nodes.map((n) => [n.id, { cpu: n.freeNanoCpus, memory: n.freeMemoryBytes }]))
  const used = new Set<string>()
  for (const [index, replica] of replicas.entries()) {
    const allowed = nodes.filter((node) => replica.constraints.every((c) => meetsConstraint(node, c)))
    if (allowed.length === 0) {
      return {
        placed: false,
        message: `no usable swarm node meets replica ${index}'s constraints (${replica.constraints.join(', ')})`,
      }
    }
    const fitting = allowed
      .filter((n) => free.get(n.id)!.cpu >= replica.nanoCpus && free.get(n.id)!.memory >= replica.memoryBytes)
      .sort((a, b) => free.get(b.id)!.cpu - free.get(a.id)!.cpu || a.id.localeCompare(b.id))
    const chosen = fitting[0]
    if (!chosen) {
      const most = allowed.reduce((best, n) => (free.get(n.id)!.cpu > free.get(best.id)!.cpu ? n : best))
      const room = free.get(most.id)!
      return {
        placed: false,
        message:
          `no swarm node has room for replica ${index} (${cpusOf(replica.nanoCpus)}, ${mibOf(replica.memoryBytes)}); ` +
          `the most free on an allowed node is ${cpusOf(Math.max(0, room.cpu))} and ${mibOf(Math.max(0, room.memory))}`,
      }
    }
    const room = free.get(chosen.id)!
    room.cpu -= replica.nanoCpus
    room.memory -= replica.memoryBytes
    used.add(chosen.hostname || chosen.id)
  }
  return {
    placed: true,
    message: `fits on swarm node${used.size === 1 ? '' : 's'} ${[...used].sort().join(', ')}`,
  }
}
