import type Docker from 'dockerode'
import {
  type DeploymentUnit,
  startGroupsOf,
  unitsOf,
  type Workload,
  workloadsOf,
} from '../../domain/services.ts'
import {
  type ApplyContext,
  type DeploymentTarget,
  ProviderError,
  WaitingForServiceError,
} from '../provider.ts'
import { type ContainerPlan, createOptionsOf, type HardeningOptions, hostPortsOf } from './container-spec.ts'
import {
  engineMessageOf,
  isConflict,
  isNetworkMissing,
  isNotModified,
  isPortTaken,
  toProviderError,
  translating,
} from './errors.ts'
import { ensureImage } from './images.ts'
import { inspectDeployment } from './instances.ts'
import { containerNameOf, type EngineScope, identityOf, portKeyOf } from './labels.ts'
import { ensureOwnerNetwork, forgetOwnerNetwork } from './network.ts'
import { type AllocatePort, type BlockPort, takenPortOf } from './ports.ts'
import { authFor, type RegistryAuth } from './registry-auth.ts'
import type { SizedVolumes } from './sized-volumes.ts'
import { ensureVolumes, volumesOf } from './volumes.ts'

// Converging one deployment: create what is missing, start what is stopped, recreate what is
// older than the target's restart generation, remove surplus replicas. Every step is keyed by the
// container name `berth-<deployment>-<replica>`, which the engine keeps unique, so a step repeated
// after a crash (or run twice at once) finds its own work instead of duplicating it. Returns the
// ids of the deployment's containers once converged, so the caller can inspect them without
// listing again (under a burst of deploys every engine call queues behind the others).

/**
 * The target as the control plane will send it: host ports it allocated, keyed `replica/port/proto`.
 * `replicas`, when given, are the only replicas this engine runs (a fleet node's share): others
 * are neither created nor counted as surplus.
 */
export type DockerDeploymentTarget = DeploymentTarget & {
  hostPorts?: Record<string, number>
  replicas?: number[]
}

export interface ApplySettings {
  hardening: HardeningOptions
  allocatePort: AllocatePort
  blockPort?: BlockPort
  pullAttempts: number
  pullRetryDelayMs: number
  registryAuths: RegistryAuth[]
  /** Whose containers these are on the engine (a fleet node's, on an agent). */
  scope?: EngineScope
  /** Enforced volume sizes (loop filesystems); absent: sizes are recorded only. */
  sizedVolumes?: SizedVolumes
}

interface Creation {
  unit: DeploymentUnit
  /** Ports the replaced container had, so a recreated replica keeps its endpoints. */
  previousPorts: Record<string, number>
}

export async function applyDeployment(
  clients: { docker: Docker; untimed: Docker },
  settings: ApplySettings,
  target: DockerDeploymentTarget,
  ctx: ApplyContext,
): Promise<string[]> {
  const { spec } = target
  const { docker } = clients
  volumesOf(spec) // a bad volume fails the apply before anything is created
  const { scope } = settings
  const existing = await translating('list containers', () => inspectDeployment(docker, target.id, scope))
  const units = unitsOf(spec).filter((u) => target.replicas?.includes(u.index) ?? true)
  const unitOf = new Map(units.map((u) => [u.index, u]))

  const kept = new Map<number, Docker.ContainerInspectInfo>()
  const toRemove: Docker.ContainerInspectInfo[] = []
  const toCreate: Creation[] = []
  const toStart = new Map<number, string>()
  for (const info of existing) {
    const identity = identityOf(info.Config.Labels, scope)
    const unit = unitOf.get(identity?.replica ?? -1)
    // An instance numbered for another service (the spec's services changed) is not this unit's.
    if (!unit || kept.has(unit.index) || identity?.service !== unit.service) toRemove.push(info)
    else kept.set(unit.index, info)
  }
  for (const unit of units) {
    const info = kept.get(unit.index)
    if (!info) toCreate.push({ unit, previousPorts: {} })
    else if ((identityOf(info.Config.Labels, scope)?.restartGeneration ?? 0) < target.restartGeneration) {
      // Labels cannot change, so a newer restart generation means a new container.
      toRemove.push(info)
      const bindings = info.HostConfig.PortBindings as Parameters<typeof hostPortsOf>[1]
      toCreate.push({ unit, previousPorts: hostPortsOf(unit.index, bindings) })
    } else if (!info.State.Running) toStart.set(unit.index, info.Id)
  }

  // A dependency that exited while what depends on it has never started crashed during this
  // deploy (a deploy waiting for it comes back here every second): it is left exited, so the
  // readiness check fails the deploy, instead of being started again and again.
  for (const index of crashedDependencies(target.spec, kept)) toStart.delete(index)

  for (const info of toRemove) await removeContainer(docker, info.Id)
  const removed = new Set(toRemove.map((info) => info.Id))
  const converged = [...kept.values()].filter((info) => !removed.has(info.Id)).map((info) => info.Id)

  const sizedFor = (image: string) =>
    settings.sizedVolumes
      ? { volumes: settings.sizedVolumes, owner: () => imageOwnerOf(docker, image) }
      : undefined
  if (toCreate.length > 0) {
    if (toCreate.some((c) => c.unit.spec.resources.gpus > 0)) {
      throw new ProviderError('permanent', 'this docker provider offers no GPUs', {
        eventType: 'gpu_unavailable',
      })
    }
    await ctx.progress('pulling')
    for (const image of new Set(toCreate.map((c) => c.unit.spec.image))) {
      await ensureImage(clients.untimed, image, {
        attempts: settings.pullAttempts,
        retryDelayMs: settings.pullRetryDelayMs,
        signal: ctx.signal,
        // The owner's own credentials first: they serve only its deployments.
        ...withAuth(authFor(image, [...(target.registryCredentials ?? []), ...settings.registryAuths])),
      })
      ctx.signal.throwIfAborted()
    }
    await ctx.progress('creating')
    const network = await ensureOwnerNetwork(docker, target.ownerId, scope)
    const volumes = await ensureWorkloadVolumes(docker, target, scope, sizedFor)
    for (const creation of toCreate) {
      ctx.signal.throwIfAborted()
      const { unit } = creation
      const plan: ContainerPlan = {
        deploymentId: target.id,
        ownerId: target.ownerId,
        replica: unit.index,
        service: unit.service,
        restartGeneration: target.restartGeneration,
        spec: unit.spec,
        network,
        hostPorts: await hostPortsFor(target, creation, settings.allocatePort),
        volumes: volumes.filter((v) => unit.spec.volumes?.some((own) => own.name === v.name)),
        scope,
      }
      const id = await createContainer(docker, plan, settings.hardening)
      toStart.set(unit.index, id)
      converged.push(id)
    }
  }

  if (toStart.size > 0) {
    // A stopped container's sized volumes are mounted again first (a host restart unmounts them).
    if (settings.sizedVolumes && toCreate.length === 0) {
      await ensureWorkloadVolumes(docker, target, scope, sizedFor)
    }
    await ctx.progress('starting')
    await startInOrder(docker, settings, target, toStart, ctx)
  }
  return converged
}

/**
 * Starts the instances in `toStart` (by unit index) group by group: a service starts once every
 * service it depends on is ready (ctx.ready: healthy by its check, or running without one); the
 * first group whose dependencies are not ready ends the apply (WaitingForServiceError), and the
 * next apply goes on from there. A single-image deployment is one group.
 */
async function startInOrder(
  docker: Docker,
  settings: ApplySettings,
  target: DockerDeploymentTarget,
  toStart: Map<number, string>,
  ctx: ApplyContext,
): Promise<void> {
  const ready = new Set<string>()
  for (const group of startGroupsOf(target.spec)) {
    const ids = group.flatMap((w) =>
      Array.from({ length: w.spec.replicas }, (_, r) => toStart.get(w.firstIndex + r)).filter(
        (id) => id !== undefined,
      ),
    )
    // A group with nothing to start waits for no one (its dependencies restarted alone).
    if (ids.length === 0) continue
    for (const dependency of new Set(group.flatMap((w) => w.dependsOn))) {
      if (ready.has(dependency)) continue
      ctx.signal.throwIfAborted()
      if (ctx.ready && !(await ctx.ready(dependency))) throw new WaitingForServiceError(dependency)
      ready.add(dependency)
    }
    for (const id of ids) await startContainer(docker, id, target.ownerId, settings.blockPort, settings.scope)
  }
}

/**
 * The instances (by index) of services others depend on that have run and exited while every
 * instance of a service depending on them has been created and never started.
 */
function crashedDependencies(
  spec: DockerDeploymentTarget['spec'],
  kept: Map<number, Docker.ContainerInspectInfo>,
): number[] {
  const workloads = workloadsOf(spec)
  const indexesOf = (w: Workload) => Array.from({ length: w.spec.replicas }, (_, r) => w.firstIndex + r)
  const neverStarted = (index: number) => kept.get(index)?.State.Status === 'created'
  const waiting = workloads.filter((w) => w.dependsOn.length > 0 && indexesOf(w).every(neverStarted))
  const dependencies = new Set(waiting.flatMap((w) => w.dependsOn))
  return workloads
    .filter((w) => w.service !== null && dependencies.has(w.service))
    .flatMap(indexesOf)
    .filter((index) => kept.get(index)?.State.Status === 'exited')
}

/** The deployment's volumes, each made by the owner of the image of the service that mounts it. */
async function ensureWorkloadVolumes(
  docker: Docker,
  target: DockerDeploymentTarget,
  scope: EngineScope,
  sizedFor: (image: string) => Parameters<typeof ensureVolumes>[3],
) {
  const mounts = []
  for (const workload of workloadsOf(target.spec)) {
    if (!workload.spec.volumes?.length) continue
    const only = { ...target, spec: workload.spec }
    mounts.push(...(await ensureVolumes(docker, only, scope, sizedFor(workload.spec.image))))
  }
  return mounts
}

async function hostPortsFor(
  target: DockerDeploymentTarget,
  creation: Creation,
  allocate: AllocatePort,
): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const port of creation.unit.spec.ports ?? []) {
    const key = portKeyOf(creation.unit.index, port.containerPort, port.protocol)
    out[key] =
      target.hostPorts?.[key] ??
      creation.previousPorts[key] ??
      (await allocate({
        deploymentId: target.id,
        replica: creation.unit.index,
        containerPort: port.containerPort,
        protocol: port.protocol,
      }))
  }
  return out
}

/** Creates the container, or adopts it when a concurrent step created it first. Returns its id. */
async function createContainer(
  docker: Docker,
  plan: ContainerPlan,
  hardening: HardeningOptions,
): Promise<string> {
  const name = containerNameOf(plan.deploymentId, plan.replica, plan.scope)
  const options = createOptionsOf(plan, hardening)
  try {
    try {
      return (await docker.createContainer(options)).id
    } catch (error) {
      // The owner's last other deployment removed the network meanwhile: make it again, once,
      // and attach to the new one (containers attach by network id).
      if (!isNetworkMissing(error)) throw error
      forgetOwnerNetwork(docker, plan.ownerId, plan.scope)
      const network = await ensureOwnerNetwork(docker, plan.ownerId, plan.scope)
      return (await docker.createContainer(createOptionsOf({ ...plan, network }, hardening))).id
    }
  } catch (error) {
    if (!isConflict(error)) throw toProviderError(error, `create container ${name}`)
    const info = await translating(`inspect container ${name}`, () => docker.getContainer(name).inspect())
    const identity = identityOf(info.Config.Labels, plan.scope)
    if (identity?.deploymentId !== plan.deploymentId || identity.replica !== plan.replica) {
      throw new ProviderError('permanent', `a container named ${name} exists and is not berth's`, {
        cause: error,
        eventType: 'name_conflict',
      })
    }
    return info.Id
  }
}

async function startContainer(
  docker: Docker,
  id: string,
  ownerId: string,
  blockPort: BlockPort | undefined,
  scope: EngineScope,
): Promise<void> {
  try {
    await docker.getContainer(id).start()
  } catch (error) {
    if (isNotModified(error)) return // already running
    if (isPortTaken(error)) {
      // The host port went to someone else after it was chosen: keep it from being handed out
      // again and drop this container, so the next apply creates it with another port.
      if (blockPort) await blockTakenPorts(docker, id, engineMessageOf(error), blockPort)
      await removeContainer(docker, id)
      throw new ProviderError('transient', `host port taken while starting: ${String(error)}`, {
        cause: error,
      })
    }
    if (isNetworkMissing(error)) {
      // The engine creates a container on a network id that is gone (another control plane
      // removed the owner's network) and refuses only at start. Such a container can never start:
      // drop it, and the next apply creates it again on the owner's network as it is then.
      forgetOwnerNetwork(docker, ownerId, scope)
      await removeContainer(docker, id)
      throw new ProviderError(
        'transient',
        `the owner's network was removed while starting: ${String(error)}`,
        {
          cause: error,
        },
      )
    }
    throw toProviderError(error, `start container ${id.slice(0, 12)}`)
  }
}

/** Blocks the port the engine named, or every host port of the container when it named none of them. */
async function blockTakenPorts(docker: Docker, id: string, message: string, blockPort: BlockPort) {
  const info = await translating(`inspect container ${id.slice(0, 12)}`, () =>
    docker.getContainer(id).inspect(),
  )
  const bound = Object.entries(info.HostConfig.PortBindings ?? {}).flatMap(([exposed, binds]) =>
    ((binds ?? []) as Array<{ HostPort?: string }>).map((b) => ({
      hostPort: Number(b.HostPort),
      protocol: exposed.endsWith('/udp') ? ('udp' as const) : ('tcp' as const),
    })),
  )
  const taken = takenPortOf(message)
  const named = bound.filter((b) => b.hostPort === taken)
  for (const b of named.length > 0 ? named : bound) await blockPort(b.hostPort, b.protocol)
}

export async function removeContainer(docker: Docker, id: string): Promise<void> {
  try {
    // v: anonymous volumes go with the container; named volumes are the deployment's (volumes.ts).
    await docker.getContainer(id).remove({ force: true, v: true })
  } catch (error) {
    // Already gone, or already being removed by a concurrent step.
    const status = (error as { statusCode?: number }).statusCode
    if (status === 404 || (status === 409 && /already in progress/i.test(String(error)))) return
    throw toProviderError(error, `remove container ${id.slice(0, 12)}`)
  }
}

const withAuth = (auth: ReturnType<typeof authFor>) => (auth ? { auth } : {})

/**
 * The user an image runs as, when it names one by number (`999` or `999:999`): a sized volume's
 * filesystem is made theirs, as the engine makes a new named volume take its mount point's owner.
 */
async function imageOwnerOf(
  docker: Docker,
  image: string,
): Promise<{ uid: number; gid: number } | undefined> {
  const info = await translating(`inspect image ${image}`, () => docker.getImage(image).inspect())
  const match = /^(\d+)(?::(\d+))?$/.exec(info.Config?.User ?? '')
  return match ? { uid: Number(match[1]), gid: Number(match[2] ?? match[1]) } : undefined
}
