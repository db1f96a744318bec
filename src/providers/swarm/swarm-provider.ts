import type Docker from 'dockerode'
import { abortableDelay } from '../../domain/delay.ts'
import { connectDocker, type EngineAddress } from '../docker/connection.ts'
import { isNotFound, toProviderError, translating } from '../docker/errors.ts'
import { createImagePolicy } from '../docker/image-policy.ts'
import { LABEL } from '../docker/labels.ts'
import { engineLogOptions, readReplicaLogs } from '../docker/logs.ts'
import type { AllocatePort, BlockPort } from '../docker/ports.ts'
import type { RegistryAuth } from '../docker/registry-auth.ts'
import { type EngineStats, sumUsage, usageOf } from '../docker/stats.ts'
import { type Provider, ProviderError, singleImageTarget } from '../provider.ts'
import {
  applySwarmDeployment,
  removeService,
  type SwarmApplySettings,
  updateService,
  waitForTasks,
} from './apply.ts'
import { deploymentFilter, SWARM_FILTER, serviceIdentityOf } from './labels.ts'
import { removeOwnerOverlayIfUnused, removeUnusedOverlays } from './network.ts'
import { clusterSize } from './nodes.ts'
import { removePins } from './pins.ts'
import { placeOnSwarm } from './place.ts'
import { removeSecrets, removeUnusedSecrets } from './secrets.ts'
import type { PublishMode } from './service-spec.ts'
import {
  instanceOfService,
  nodeAddressOf,
  observedOfInstances,
  readCluster,
  type SwarmNode,
  type SwarmService,
} from './tasks.ts'

// The `swarm` provider: a Docker Swarm cluster through a manager's engine API (never the CLI).
// A deployment is one service per replica (service-spec.ts says why), on its owner's overlay
// network (network.ts), with its secret env values as Swarm secrets (secrets.ts).

export interface SwarmProviderOptions {
  /** A manager's engine; defaults to the local unix socket. */
  engine?: EngineAddress
  name?: string
  pidsLimit?: number
  stopGraceSeconds?: number
  readOnlyRootfs?: boolean
  /** `host` (default): ports published on the node that runs the task; `ingress`: on every node. */
  publishMode?: PublishMode
  encryptNetworks?: boolean
  /** Volume driver; `local` (default) pins replicas with volumes to their node. */
  volumeDriver?: string
  /** Host in `ingress` endpoint URLs (a load balancer, a DNS name for the nodes); default: a manager's address. */
  publicHost?: string
  /** Constraints every task gets, which no spec can lift (`node.role==worker`). */
  constraints?: string[]
  /** Told about a published port a node could not bind, so it is not handed out again soon. */
  blockPort?: BlockPort
  allocatePort: AllocatePort
  releasePorts?: (deploymentId: string) => Promise<void>
  registryAuths?: RegistryAuth[]
  allowedRegistries?: string[]
  deniedRegistries?: string[]
  resolveRegistry?: (host: string) => Promise<string[]>
  volumeRetention?: 'delete' | 'keep'
  /** How long apply and restart wait for tasks before retrying later. Default 120 s. */
  startTimeoutSeconds?: number
  /** How often they look. Default 250 ms. */
  pollMs?: number
}

/** Task states in which a task still holds its node's resources. */
const ACTIVE = ['assigned', 'accepted', 'preparing', 'ready', 'starting', 'running']
/** How long a removal waits for Swarm to delete a service's stopped tasks before going on. */
const REAP_WAIT_MS = 10_000

export function createSwarmProvider(options: SwarmProviderOptions): Provider {
  const docker = connectDocker(options.engine)
  const untimed = connectDocker({ ...options.engine, timeoutMs: 0 })
  const grace = options.stopGraceSeconds ?? 10
  const publishMode = options.publishMode ?? 'host'
  const settings: SwarmApplySettings = {
    hardening: {
      pidsLimit: options.pidsLimit ?? 256,
      readOnlyRootfs: options.readOnlyRootfs ?? false,
      stopGraceSeconds: grace,
      publishMode,
      logMaxSize: '10m',
      logMaxFiles: 3,
    },
    encryptNetworks: options.encryptNetworks ?? false,
    volumeDriver: options.volumeDriver ?? 'local',
    allocatePort: options.allocatePort,
    ...(options.blockPort ? { blockPort: options.blockPort } : {}),
    constraints: options.constraints ?? [],
    registryAuths: options.registryAuths ?? [],
    startTimeoutMs: (options.startTimeoutSeconds ?? 120) * 1000,
    pollMs: options.pollMs ?? 250,
  }
  const images = createImagePolicy({
    allowedRegistries: options.allowedRegistries ?? [],
    deniedRegistries: options.deniedRegistries ?? [],
    registryAuths: options.registryAuths ?? [],
    ...(options.resolveRegistry ? { resolve: options.resolveRegistry } : {}),
  })

  /**
   * Where users and probes reach a task's ports: in host mode the node that runs it (only that
   * node listens); through the mesh every node answers: `publicHost`, or a manager that is up.
   */
  const endpointHostOf = (nodes: Map<string, SwarmNode>) => {
    if (publishMode === 'host') return nodeAddressOf
    const manager = [...nodes.values()].find((n) => n.ManagerStatus && n.Status?.State === 'ready')
    const host = options.publicHost ?? nodeAddressOf(manager)
    return () => host
  }

  async function observe(deploymentId: string) {
    const cluster = await translating(`read services of ${deploymentId}`, () =>
      readCluster(docker, deploymentFilter(deploymentId)),
    )
    const hostOf = endpointHostOf(cluster.nodes)
    const instances = cluster.services
      .map((s) => instanceOfService(s, cluster.tasks.get(s.ID) ?? [], cluster.nodes, hostOf))
      .filter((i) => i !== null)
    if (instances.length === 0 && cluster.services.length > 0) {
      // Services whose tasks are all gone (their node went down): there, with nothing running.
      return { deploymentId, instances: [], endpoints: [] }
    }
    return observedOfInstances(deploymentId, instances)
  }

  async function servicesOf(deploymentId: string): Promise<SwarmService[]> {
    return (await translating(`list services of ${deploymentId}`, () =>
      docker.listServices({ filters: { label: deploymentFilter(deploymentId) } }),
    )) as unknown as SwarmService[]
  }

  /** Rewrites each of the deployment's services with `change` (null: leave it), at its current version. */
  async function updateEach(
    deploymentId: string,
    what: string,
    change: (spec: SwarmService['Spec']) => object | null,
  ) {
    for (const service of await servicesOf(deploymentId)) {
      const changed = change(service.Spec)
      if (!changed) continue
      await translating(`${what} service ${service.Spec.Name}`, async () => {
        try {
          await updateService(docker, service, changed)
        } catch (error) {
          if (!isNotFound(error)) throw error
        }
      })
    }
  }

  /**
   * Waits until none of the deployment's tasks runs any more (bounded by the stop grace), and
   * none of its containers is left on the manager's own node (whose volumes and network berth
   * removes next). Tasks of a removed service are not listed at all: the managers answer 404.
   */
  async function waitUntilStopped(deploymentId: string, serviceIds: string[]): Promise<void> {
    const deadline = Date.now() + (grace + 30) * 1000
    const busy = async () => {
      const tasks = await tasksOf(serviceIds)
      if (tasks.some((t) => ACTIVE.includes((t as { Status?: { State?: string } }).Status?.State ?? '')))
        return true
      const local = await docker.listContainers({
        all: true,
        filters: { label: deploymentFilter(deploymentId) },
      })
      return local.some((c) => c.State === 'running' || c.State === 'created' || c.State === 'removing')
    }
    while (serviceIds.length > 0 && (await translating(`read tasks of ${deploymentId}`, busy))) {
      if (Date.now() > deadline) {
        throw new ProviderError(
          'transient',
          `tasks of ${deploymentId} still running ${grace + 30}s after the stop`,
        )
      }
      await abortableDelay(settings.pollMs)
    }
  }

  /**
   * Stops the services and waits for their tasks to end (on every node: the tasks of a service
   * that still exists can be listed), removes them, then what they used: their ports can then go
   * to another deployment, and their secrets and network be removed.
   */
  async function removeServices(deploymentId: string): Promise<void> {
    await scaleToNothing(deploymentId)
    const services = await servicesOf(deploymentId)
    await waitUntilReaped(services.map((s) => s.ID))
    for (const service of services) await removeService(docker, service.ID)
    await waitUntilGone(deploymentId)
    await removeSecrets(docker, deploymentId)
    const owners = new Set(services.map((s) => s.Spec.Labels?.[LABEL.owner]).filter((o) => o !== undefined))
    for (const owner of owners) await removeOwnerOverlayIfUnused(docker, owner)
  }

  /** The services' tasks; none for services the managers no longer know (they answer 404). */
  const tasksOf = (serviceIds: string[]) =>
    docker.listTasks({ filters: { service: serviceIds } }).catch((error: unknown) => {
      if (isNotFound(error)) return []
      throw error
    })

  /**
   * Waits (a few seconds at most) until Swarm has deleted the stopped tasks the scale-down marked
   * for removal. Docker 20.10's manager crashes (a nil task in SetServiceTasksRemove) when a
   * service is removed while its task reaper deletes them, so the two must not overlap.
   */
  async function waitUntilReaped(serviceIds: string[]): Promise<void> {
    const deadline = Date.now() + REAP_WAIT_MS
    const marked = async () => (await tasksOf(serviceIds)).some((t) => t.DesiredState === 'remove')
    while (serviceIds.length > 0 && Date.now() < deadline && (await translating('read tasks', marked))) {
      await abortableDelay(settings.pollMs)
    }
  }

  /**
   * Waits until the node berth talks to holds no container of the deployment any more: Swarm
   * keeps the containers of ended tasks (its task history) until their service is removed, and
   * removes them a moment after; until then they hold the deployment's volumes.
   */
  async function waitUntilGone(deploymentId: string): Promise<void> {
    const deadline = Date.now() + 30_000
    const left = () =>
      translating(`list containers of ${deploymentId}`, () =>
        docker.listContainers({ all: true, filters: { label: deploymentFilter(deploymentId) } }),
      )
    while ((await left()).length > 0) {
      if (Date.now() > deadline) {
        throw new ProviderError(
          'transient',
          `containers of ${deploymentId} still there 30s after their services went`,
        )
      }
      await abortableDelay(settings.pollMs)
    }
  }

  /** Scales every replica's service to 0 and waits until none of its tasks runs. */
  async function scaleToNothing(deploymentId: string): Promise<void> {
    await updateEach(deploymentId, 'stop', (spec) =>
      spec.Mode?.Replicated?.Replicas === 0 ? null : { ...spec, Mode: { Replicated: { Replicas: 0 } } },
    )
    await waitUntilStopped(
      deploymentId,
      (await servicesOf(deploymentId)).map((s) => s.ID),
    )
  }

  return {
    name: options.name ?? 'swarm',
    capabilities: { gpu: false, volumes: true, replicas: true, services: false },

    async ping() {
      try {
        // Only a manager answers this: a node that left the swarm or lost its quorum does not.
        await docker.swarmInspect()
        return true
      } catch {
        return false
      }
    },

    checkImage: (image, requester) => images.check(image, requester),

    capacity: async () => {
      try {
        return await clusterSize(docker)
      } catch {
        return null
      }
    },

    // Node by node: the cluster's total is no promise that one node has room for a replica.
    place: (target) => placeOnSwarm(docker, settings, singleImageTarget(target, 'swarm')),

    async apply(target, ctx) {
      await applySwarmDeployment(docker, settings, singleImageTarget(target, 'swarm'), ctx)
      return (await observe(target.id)) ?? { deploymentId: target.id, instances: [], endpoints: [] }
    },

    observe,

    // Scaled to nothing: the service (its ports, secrets, pinned node) stays for a later start.
    stop: (deploymentId) => scaleToNothing(deploymentId),

    async restart(deploymentId) {
      // A forced update replaces each replica's task; a stopped one is scaled back up as well.
      const services = await servicesOf(deploymentId)
      await updateEach(deploymentId, 'restart', (spec) => ({
        ...spec,
        Mode: { Replicated: { Replicas: 1 } },
        TaskTemplate: { ...spec.TaskTemplate, ForceUpdate: (spec.TaskTemplate?.ForceUpdate ?? 0) + 1 },
      }))
      await waitForTasks(docker, deploymentId, services.length, settings, new AbortController().signal)
    },

    async remove(deploymentId) {
      await removeServices(deploymentId)
      // Volumes go only after the tasks: a failure above is retried with them intact. With the
      // local driver the managers' API reaches only the volumes on the manager's own node (README).
      if (options.volumeRetention !== 'keep') await removeLocalVolumes(docker, deploymentId)
      await removePins(docker, deploymentId)
      await options.releasePorts?.(deploymentId)
    },

    async release(deploymentId) {
      await removeServices(deploymentId)
      await options.releasePorts?.(deploymentId)
    },

    async logs(deploymentId, logOptions) {
      const services = await servicesOf(deploymentId)
      return readReplicaLogs(
        services.map((service) => ({
          name: service.Spec.Name,
          open: (share) =>
            untimed
              .getService(service.ID)
              .logs(engineLogOptions(share) as Parameters<Docker.Service['logs']>[0]),
        })),
        logOptions,
      )
    },

    async stats(deploymentId) {
      // Per task where the engine offers it: a manager's API gives stats only of containers on
      // its own node, so tasks elsewhere are not counted (README).
      const cluster = await translating(`read tasks of ${deploymentId}`, () =>
        readCluster(docker, deploymentFilter(deploymentId)),
      )
      const samples = []
      for (const tasks of cluster.tasks.values()) {
        for (const task of tasks) {
          const container = task.Status.ContainerStatus?.ContainerID
          if (task.Status.State !== 'running' || !container) continue
          try {
            samples.push(
              usageOf((await docker.getContainer(container).stats({ stream: false })) as EngineStats),
            )
          } catch (error) {
            if (!isNotFound(error)) throw toProviderError(error, `read stats of task ${task.ID}`)
          }
        }
      }
      return sumUsage(samples)
    },

    sweepUnused: async () =>
      (await removeUnusedSecrets(docker, 60_000)) + (await removeUnusedOverlays(docker, 60_000)),

    async list() {
      const services = (await translating('list services', () =>
        docker.listServices({ filters: { label: [SWARM_FILTER] } }),
      )) as unknown as SwarmService[]
      return services.flatMap((service) => {
        const identity = serviceIdentityOf(service.Spec.Labels)
        if (!identity) return []
        const stopped = service.Spec.Mode?.Replicated?.Replicas === 0
        return [
          {
            instanceId: service.ID,
            deploymentId: identity.deploymentId,
            ownerId: identity.ownerId,
            replica: identity.replica,
            state: stopped ? ('stopped' as const) : ('running' as const),
            health: 'unknown' as const,
          },
        ]
      })
    },
  }
}

async function removeLocalVolumes(docker: Docker, deploymentId: string): Promise<void> {
  const listed = await translating('list volumes', () =>
    docker.listVolumes({ filters: { label: deploymentFilter(deploymentId) } }),
  )
  for (const volume of listed.Volumes ?? []) {
    try {
      await docker.getVolume(volume.Name).remove()
    } catch (error) {
      if (!isNotFound(error)) throw toProviderError(error, `remove volume ${volume.Name}`)
    }
  }
}
