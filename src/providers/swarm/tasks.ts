import type Docker from 'dockerode'
import { endpointUrlOf } from '../docker/container-spec.ts'
import type { InstanceState, Observed, ObservedInstance } from '../provider.ts'
import { serviceIdentityOf } from './labels.ts'

// Reading what runs: each berth service (one replica) and its tasks, as the managers know them,
// turned into the provider's instances. Only the replica's current task counts: the newest one
// Swarm still wants running, or else the newest one at all.

export interface SwarmTask {
  ID: string
  ServiceID: string
  NodeID?: string
  DesiredState: string
  CreatedAt: string
  /** The service's task template when the task was made: its ForceUpdate tells a restart's task. */
  Spec?: { ForceUpdate?: number }
  Status: {
    State: string
    Timestamp?: string
    Err?: string
    ContainerStatus?: { ContainerID?: string; ExitCode?: number }
    PortStatus?: { Ports?: Array<{ Protocol?: string; TargetPort?: number; PublishedPort?: number }> }
  }
}

export interface SwarmService {
  ID: string
  Version: { Index: number }
  CreatedAt?: string
  Spec: {
    Name: string
    Labels?: Record<string, string>
    Mode?: { Replicated?: { Replicas?: number } }
    TaskTemplate?: { ForceUpdate?: number; Placement?: { Constraints?: string[] } }
    EndpointSpec?: {
      Ports?: Array<{ Protocol?: string; TargetPort?: number; PublishedPort?: number; PublishMode?: string }>
    }
  }
}

export interface SwarmNode {
  ID: string
  Spec?: { Availability?: string; Role?: string; Labels?: Record<string, string> }
  Status?: { State?: string; Addr?: string }
  ManagerStatus?: { Addr?: string }
  Description?: { Hostname?: string; Resources?: { NanoCPUs?: number; MemoryBytes?: number } }
}

const STARTING = new Set(['new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting'])
/** Ended by the workload itself (an exit) or refused by the node (an image it could not pull). */
const ENDED_BY_ITSELF = new Set(['complete', 'failed', 'rejected'])

/** The replica's current task, or undefined when it has none. */
export function currentTaskOf(tasks: SwarmTask[]): SwarmTask | undefined {
  // Compared as times: the engine trims trailing zeros of the fraction, so the text does not sort.
  const newestFirst = [...tasks].sort((a, b) => Date.parse(b.CreatedAt) - Date.parse(a.CreatedAt))
  return newestFirst.find((t) => t.DesiredState === 'running') ?? newestFirst[0]
}

export const replicasOf = (service: SwarmService) => service.Spec.Mode?.Replicated?.Replicas ?? 1

/** Where a node answers: its address, or its advertised manager address when it reports 0.0.0.0. */
export function nodeAddressOf(node: SwarmNode | undefined): string | undefined {
  const addr = node?.Status?.Addr
  if (addr && addr !== '0.0.0.0') return addr
  const manager = node?.ManagerStatus?.Addr
  return manager ? manager.slice(0, manager.lastIndexOf(':')) : undefined
}

/**
 * The instance a replica's service stands for, or null when it has none right now: its task was
 * shut down by Swarm (its node went down, an update is replacing it) or not yet created. A missing
 * instance makes the reconciler apply again, which gives the replica a new task on a node that is
 * up; an instance that exited makes it restart along its ladder.
 */
export function instanceOfService(
  service: SwarmService,
  tasks: SwarmTask[],
  nodes: Map<string, SwarmNode>,
  endpointHost: (node: SwarmNode | undefined) => string | undefined,
): ObservedInstance | null {
  const identity = serviceIdentityOf(service.Spec.Labels)
  if (!identity) return null
  const base = {
    instanceId: service.ID,
    deploymentId: identity.deploymentId,
    ownerId: identity.ownerId,
    replica: identity.replica,
    restartGeneration: identity.restartGeneration,
    health: 'unknown' as const,
  }
  if (replicasOf(service) === 0) return { ...base, state: 'stopped' }
  const task = currentTaskOf(tasks)
  if (!task) return null
  const node = task.NodeID ? nodes.get(task.NodeID) : undefined
  let state: InstanceState
  if (task.DesiredState === 'running' && task.Status.State === 'running') state = 'running'
  else if (task.DesiredState === 'running' && STARTING.has(task.Status.State)) state = 'created'
  else if (ENDED_BY_ITSELF.has(task.Status.State)) state = 'exited'
  else return null
  if (state !== 'exited' && node?.Status?.State === 'down') return null
  const host = endpointHost(node)
  const addresses = host
    ? (service.Spec.EndpointSpec?.Ports ?? []).flatMap((port) =>
        port.PublishedPort && port.TargetPort
          ? [
              {
                containerPort: port.TargetPort,
                protocol: port.Protocol === 'udp' ? ('udp' as const) : ('tcp' as const),
                host,
                port: port.PublishedPort,
              },
            ]
          : [],
      )
    : []
  return {
    ...base,
    state,
    addresses,
    ...(state === 'exited' &&
    task.Status.ContainerStatus?.ExitCode !== undefined &&
    task.Status.State !== 'rejected'
      ? { exitCode: task.Status.ContainerStatus.ExitCode }
      : {}),
    ...(state === 'running' && task.Status.Timestamp ? { startedAt: new Date(task.Status.Timestamp) } : {}),
  }
}

/** The deployment as observed: its instances in replica order, and one endpoint per published port. */
export function observedOfInstances(deploymentId: string, instances: ObservedInstance[]): Observed | null {
  if (instances.length === 0) return null
  const sorted = [...instances].sort((a, b) => a.replica - b.replica)
  return {
    deploymentId,
    instances: sorted,
    endpoints: sorted.flatMap((i) =>
      (i.addresses ?? []).map((a) => ({
        containerPort: a.containerPort,
        protocol: a.protocol,
        url: endpointUrlOf(a.host, a.port, a.protocol),
      })),
    ),
  }
}

/** Everything the managers know that observing needs, in three calls. */
export async function readCluster(
  docker: Docker,
  serviceFilter: string[],
): Promise<{ services: SwarmService[]; tasks: Map<string, SwarmTask[]>; nodes: Map<string, SwarmNode> }> {
  const services = (await docker.listServices({
    filters: { label: serviceFilter },
  })) as unknown as SwarmService[]
  const tasks = new Map<string, SwarmTask[]>()
  if (services.length > 0) {
    const listed = (await docker.listTasks({
      filters: { service: services.map((s) => s.ID) },
    })) as unknown as SwarmTask[]
    for (const task of listed) tasks.set(task.ServiceID, [...(tasks.get(task.ServiceID) ?? []), task])
  }
  const nodes = new Map(((await docker.listNodes()) as unknown as SwarmNode[]).map((n) => [n.ID, n]))
  return { services, tasks, nodes }
}
