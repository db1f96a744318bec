import type Docker from 'dockerode'
import { abortableDelay } from '../../domain/delay.ts'
import { isConflict, isNetworkMissing, translating } from '../docker/errors.ts'
import { portKeyOf } from '../docker/labels.ts'
import type { AllocatePort, BlockPort } from '../docker/ports.ts'
import { authFor, type RegistryAuth } from '../docker/registry-auth.ts'
import { volumeNameOf, volumesOf } from '../docker/volumes.ts'
import { type ApplyContext, ProviderError, type SingleImageTarget } from '../provider.ts'
import { deploymentFilter, serviceIdentityOf } from './labels.ts'
import { ensureOwnerOverlay } from './network.ts'
import { pinFor, spreadFor } from './place.ts'
import { ensureSecrets, removeSecrets } from './secrets.ts'
import { type ServicePlan, type SwarmHardening, serviceSpecOf } from './service-spec.ts'
import { currentTaskOf, readCluster, replicasOf, type SwarmService, type SwarmTask } from './tasks.ts'

// Converging one deployment on the swarm: one service per replica, created when missing, updated
// when it is older than the target's restart generation, scaled back to 1 when stopped, given a
// new task when its last one ended or its node went down; surplus replicas' services removed.
// Every step is keyed by the service name, which the managers keep unique, so a step repeated
// after a crash finds its own work. Returns once every replica's task runs (or has ended).

export type SwarmTarget = SingleImageTarget & { hostPorts?: Record<string, number> }

export interface SwarmApplySettings {
  hardening: SwarmHardening
  encryptNetworks: boolean
  /** `local` (the default) pins each replica with volumes to one node. */
  volumeDriver: string
  allocatePort: AllocatePort
  blockPort?: BlockPort
  /** The operator's constraints, added to every task's. */
  constraints: string[]
  registryAuths: RegistryAuth[]
  /** How long apply waits for tasks to run before it gives up for now (transient). */
  startTimeoutMs: number
  pollMs: number
}

export async function applySwarmDeployment(
  docker: Docker,
  settings: SwarmApplySettings,
  target: SwarmTarget,
  ctx: ApplyContext,
): Promise<void> {
  const { spec } = target
  const volumes = volumesOf(spec) // a bad volume fails the apply before anything is created
  if (spec.resources.gpus > 0) {
    throw new ProviderError('permanent', 'this swarm provider offers no GPUs', {
      eventType: 'gpu_unavailable',
    })
  }
  const cluster = await translating(`read services of ${target.id}`, () =>
    readCluster(docker, deploymentFilter(target.id)),
  )
  const byReplica = new Map<number, SwarmService>()
  const surplus: SwarmService[] = []
  for (const service of cluster.services) {
    const replica = serviceIdentityOf(service.Spec.Labels)?.replica ?? -1
    if (replica < 0 || replica >= spec.replicas || byReplica.has(replica)) surplus.push(service)
    else byReplica.set(replica, service)
  }
  for (const service of surplus) await removeService(docker, service.ID)

  const changes: Array<{ replica: number; service?: SwarmService }> = []
  for (let replica = 0; replica < spec.replicas; replica++) {
    const service = byReplica.get(replica)
    if (!service) {
      changes.push({ replica })
      continue
    }
    const generation = serviceIdentityOf(service.Spec.Labels)?.restartGeneration ?? 0
    const task = currentTaskOf(cluster.tasks.get(service.ID) ?? [])
    // A pending task (no node fits it) is rewritten too: its constraints are worked out afresh
    // (a spread value, a pin) against the nodes as they are now.
    const live =
      task?.DesiredState === 'running' &&
      !['pending', 'complete', 'failed', 'rejected', 'shutdown', 'orphaned'].includes(task.Status.State) &&
      cluster.nodes.get(task.NodeID ?? '')?.Status?.State !== 'down'
    if (generation < target.restartGeneration || !live || replicasOf(service) === 0) {
      changes.push({ replica, service })
    }
  }

  if (changes.length > 0) {
    // Each node pulls the image as it prepares its task; the stages stay in berth's order.
    await ctx.progress('pulling')
    ctx.signal.throwIfAborted()
    await ctx.progress('creating')
    let network = await ensureOwnerOverlay(docker, target.ownerId, { encrypt: settings.encryptNetworks })
    const secrets = await ensureSecrets(docker, target)
    // The owner's own credentials first: they serve only its deployments.
    const auth = authFor(spec.image, [...(target.registryCredentials ?? []), ...settings.registryAuths])
    for (const change of changes) {
      ctx.signal.throwIfAborted()
      const plan: ServicePlan = {
        deploymentId: target.id,
        ownerId: target.ownerId,
        replica: change.replica,
        restartGeneration: target.restartGeneration,
        spec,
        network,
        publishedPorts: await publishedPortsFor(
          target,
          change.replica,
          change.service,
          settings.allocatePort,
        ),
        secrets,
        volumes: volumes.map((v) => ({
          ...v,
          source: volumeNameOf(target.id, v.name, target.volumeGeneration ?? 0),
        })),
        volumeDriver: settings.volumeDriver,
        ...(await pinFor(docker, cluster.nodes, settings, target, change.replica, change.service)),
        constraints: settings.constraints,
        ...spreadFor(cluster.nodes.values(), spec.placement?.spread, change.replica),
        // Every rewrite of a service forces a new task, so "the task made from the service as it
        // is now" (waitForTasks) is never an older one that happens to look the part.
        forceUpdate: change.service ? (change.service.Spec.TaskTemplate?.ForceUpdate ?? 0) + 1 : 0,
        replicas: 1,
      }
      try {
        await writeService(docker, plan, settings.hardening, change.service, auth)
      } catch (error) {
        // The owner's last other deployment removed the network meanwhile: make it again, once.
        if (!isNetworkMissing(error) && !/network .* not found/i.test(String(error))) throw error
        network = await ensureOwnerOverlay(docker, target.ownerId, { encrypt: settings.encryptNetworks })
        await writeService(docker, { ...plan, network }, settings.hardening, change.service, auth)
      }
    }
    await removeSecrets(docker, target.id, { keep: secrets.map((s) => s.secretId) })
  }
  await ctx.progress('starting')
  await waitForTasks(docker, target.id, spec.replicas, settings, ctx.signal)
}

async function writeService(
  docker: Docker,
  plan: ServicePlan,
  hardening: SwarmHardening,
  existing: SwarmService | undefined,
  auth: ReturnType<typeof authFor>,
): Promise<void> {
  const spec = serviceSpecOf(plan, hardening)
  const name = spec.Name
  await translating(`${existing ? 'update' : 'create'} service ${name}`, async () => {
    // Credentials go with the request (X-Registry-Auth) so the nodes that pull can use them;
    // dockerode sends no header for an undefined one.
    const credentials = auth as Docker.AuthConfig
    if (existing) {
      await updateService(docker, existing, spec, credentials)
      return
    }
    try {
      await docker.createService(credentials, spec as unknown as Docker.CreateServiceOptions)
    } catch (error) {
      // Created by a concurrent step: the next apply finds it and converges it.
      if (!isConflict(error)) throw error
      const found = (await docker.getService(name).inspect()) as SwarmService
      if (serviceIdentityOf(found.Spec.Labels)?.deploymentId !== plan.deploymentId) {
        throw new ProviderError('permanent', `a service named ${name} exists and is not berth's`, {
          eventType: 'name_conflict',
        })
      }
    }
  })
}

async function publishedPortsFor(
  target: SwarmTarget,
  replica: number,
  existing: SwarmService | undefined,
  allocate: AllocatePort,
): Promise<Record<string, number>> {
  const previous = new Map(
    (existing?.Spec.EndpointSpec?.Ports ?? []).map((p) => [
      portKeyOf(replica, p.TargetPort ?? 0, p.Protocol === 'udp' ? 'udp' : 'tcp'),
      p.PublishedPort,
    ]),
  )
  const out: Record<string, number> = {}
  for (const port of target.spec.ports ?? []) {
    const key = portKeyOf(replica, port.containerPort, port.protocol)
    out[key] =
      target.hostPorts?.[key] ??
      previous.get(key) ??
      (await allocate({
        deploymentId: target.id,
        replica,
        containerPort: port.containerPort,
        protocol: port.protocol,
      }))
  }
  return out
}

/**
 * Rewrites a service at the version it was read at. The version goes in the query and the spec in
 * the body, each explicitly: given one object, the engine client would also put every field of
 * the spec (env values included) into the URL.
 */
export async function updateService(
  docker: Docker,
  service: Pick<SwarmService, 'ID' | 'Version'>,
  spec: object,
  auth?: Docker.AuthConfig,
): Promise<void> {
  // dockerode's typings lack its (auth, options) form of update; an undefined auth sends no header.
  const handle = docker.getService(service.ID) as unknown as {
    update(auth: Docker.AuthConfig | undefined, options: object): Promise<unknown>
  }
  await handle.update(auth, { _query: { version: service.Version.Index }, _body: spec })
}

export async function removeService(docker: Docker, id: string): Promise<void> {
  await translating(`remove service ${id}`, async () => {
    try {
      await docker.getService(id).remove()
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 404) throw error
    }
  })
}

/**
 * Waits until every replica's current task runs, or has ended on its own (the observation then
 * shows it exited, and the restart ladder takes over). A node that refused the task (an image it
 * cannot pull) fails the apply; a task no node can take yet keeps it waiting, up to the timeout.
 */
export async function waitForTasks(
  docker: Docker,
  deploymentId: string,
  replicas: number,
  settings: Pick<SwarmApplySettings, 'startTimeoutMs' | 'pollMs' | 'blockPort'>,
  signal: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + settings.startTimeoutMs
  let waitingFor = ''
  for (;;) {
    const cluster = await translating(`read tasks of ${deploymentId}`, () =>
      readCluster(docker, deploymentFilter(deploymentId)),
    )
    let settled = 0
    for (const service of cluster.services) {
      const state = settledState(service, currentTaskOf(cluster.tasks.get(service.ID) ?? []))
      if (state === 'settled') settled++
      else if (state === 'rejected') throw await rejection(docker, service, cluster.tasks, settings.blockPort)
      else waitingFor = state
    }
    if (settled >= replicas) return
    if (Date.now() > deadline) {
      throw new ProviderError(
        'transient',
        `tasks not running after ${settings.startTimeoutMs / 1000}s: ${waitingFor}`,
      )
    }
    await abortableDelay(settings.pollMs, signal)
  }
}

/**
 * Whether a replica's service has settled: its current task, made from the service as it is now
 * (right after an update the old task can still look current for a moment), runs or has ended on
 * its own. Otherwise `rejected`, or what it is waiting for.
 */
function settledState(service: SwarmService, task: SwarmTask | undefined): string {
  if (replicasOf(service) === 0) return 'settled'
  if (!task || (task.Spec?.ForceUpdate ?? 0) !== (service.Spec.TaskTemplate?.ForceUpdate ?? 0)) {
    return `${service.Spec.Name}: no task yet`
  }
  if (task.Status.State === 'rejected') return 'rejected'
  if (task.Status.State === 'running' && task.DesiredState === 'running') return 'settled'
  if (task.Status.State === 'complete' || task.Status.State === 'failed') return 'settled'
  return `${service.Spec.Name}: ${task.Status.State}${task.Status.Err ? ` (${task.Status.Err})` : ''}`
}

/**
 * Why a node refused a task. An image it cannot pull fails the deployment; a published port
 * something else holds on that node is blocked and retried with another one (the next apply
 * rewrites the service); anything else the node refused is retried too, since it may be the
 * node's passing trouble (a registry that timed out).
 */
async function rejection(
  docker: Docker,
  service: SwarmService,
  tasks: Map<string, SwarmTask[]>,
  blockPort?: BlockPort,
): Promise<ProviderError> {
  const reason = currentTaskOf(tasks.get(service.ID) ?? [])?.Status.Err ?? 'the node refused the task'
  if (/port is already allocated|address already in use/i.test(reason)) {
    for (const port of service.Spec.EndpointSpec?.Ports ?? []) {
      if (port.PublishedPort) await blockPort?.(port.PublishedPort, port.Protocol === 'udp' ? 'udp' : 'tcp')
    }
    // Without the service, the next apply creates it with ports allocated afresh.
    await removeService(docker, service.ID)
    return new ProviderError('transient', `published port taken on the node: ${reason}`)
  }
  if (/no such image|pull access denied|manifest unknown|repository does not exist|not found/i.test(reason)) {
    return new ProviderError('permanent', `image not available: ${reason}`, {
      eventType: 'image_pull_failed',
    })
  }
  return new ProviderError('transient', `task rejected: ${reason}`)
}
