import type Docker from 'dockerode'
import type { Provider, Usage } from '../provider.ts'
import { type ApplySettings, applyDeployment, type DockerDeploymentTarget, removeContainer } from './apply.ts'
import { connectDocker, type EngineAddress } from './connection.ts'
import type { HardeningOptions } from './container-spec.ts'
import { createEngineSize } from './engine-size.ts'
import { isNotFound, isNotModified, toProviderError, translating } from './errors.ts'
import { type WatchOptions, watchContainerEvents } from './events.ts'
import { execInContainer } from './exec.ts'
import { createImagePolicy } from './image-policy.ts'
import { inspectContainers, inspectDeployment, observedOf, summaryInstanceOf } from './instances.ts'
import { type EngineScope, LABEL, managedFilterOf } from './labels.ts'
import { engineLogOptions, readReplicaLogs } from './logs.ts'
import { removeOwnerNetworkIfUnused, removeUnusedOwnerNetworks } from './network.ts'
import { type AllocatePort, type BlockPort, osFreePort } from './ports.ts'
import type { RegistryAuth } from './registry-auth.ts'
import { createLoopVolumes } from './sized-volumes.ts'
import { type EngineStats, usageByService, usageOf } from './stats.ts'
import { remountSizedVolumes, removeVolumes } from './volumes.ts'

// The `docker` provider: one Docker engine through its API (never the CLI). Containers are named
// `berth-<deployment>-<replica>` and labelled (see labels.ts); hardening is in container-spec.ts.
//
// Read-only root filesystem: for every container when the operator sets `readOnlyRootfs`, else per
// deployment with the spec label `berth.docker/read-only-rootfs: "true"`; with a tmpfs /tmp.
// Networks: an owner's network is removed with the owner's last container. Volumes are kept on
// stop and removed, with the deployment's host ports, on `remove` (volumes.ts, ports.ts).

export interface DockerProviderOptions {
  /** Which engine; defaults to the local unix socket. */
  engine?: EngineAddress
  name?: string
  /** Default 256. */
  pidsLimit?: number
  /** SIGTERM, then SIGKILL after this many seconds. Default 10. */
  stopGraceSeconds?: number
  /** Host address published ports bind to. Default 127.0.0.1. */
  hostIp?: string
  /** Host name in endpoint URLs. Default: `hostIp`, or `localhost` when it is 0.0.0.0. */
  publicHost?: string
  readOnlyRootfs?: boolean
  /** Host port for a container port the target did not give; default: one the OS says is free. */
  allocatePort?: AllocatePort
  /** Told about a host port the engine could not bind, so it is not handed out again soon. */
  blockPort?: BlockPort
  /** Frees a deployment's host ports once its containers are removed. */
  releasePorts?: (deploymentId: string) => Promise<void>
  /** Pull tries before `image_pull_failed`. Default 3, 1s apart then doubling. */
  pullAttempts?: number
  pullRetryDelayMs?: number
  /** Credentials used when pulling from these registries, and who may use them. */
  registryAuths?: RegistryAuth[]
  /** Only these registries (empty: any public one); listed hosts may be on private addresses. */
  allowedRegistries?: string[]
  deniedRegistries?: string[]
  /** Starts are admitted up to the engine's CPUs and memory times this. Default 1. */
  overcommit?: number
  /** Resolves registry hosts for the private-address check; tests inject one. */
  resolveRegistry?: (host: string) => Promise<string[]>
  /** What `remove` does to the deployment's named volumes. Default `delete`. */
  volumeRetention?: 'delete' | 'keep'
  /** How old an unused owner network must be before the orphan sweep removes it. Default 60 s. */
  networkSweepMinAgeMs?: number
  /** Reconnect delays of the engine event stream (default 500 ms doubling to 30 s). */
  watchRetry?: WatchOptions
  /** Whose containers on the engine: unset for this provider's own, a node id on a fleet agent. */
  scope?: EngineScope
  /** Where sized volumes' filesystems live; unset: volume sizes are recorded, not enforced. */
  sizedVolumesDir?: string
}

/** The lock-down and limits every container of this provider gets, with their defaults. */
export function hardeningOf(options: DockerProviderOptions): HardeningOptions {
  return {
    pidsLimit: options.pidsLimit ?? 256,
    readOnlyRootfs: options.readOnlyRootfs ?? false,
    stopGraceSeconds: options.stopGraceSeconds ?? 10,
    hostIp: options.hostIp ?? '127.0.0.1',
    logMaxSize: '10m',
    logMaxFiles: 3,
  }
}

export function createDockerProvider(options: DockerProviderOptions = {}): Provider {
  const hardening = hardeningOf(options)
  const grace = hardening.stopGraceSeconds
  const docker = connectDocker(options.engine)
  // A stop waits up to the grace period; pulls and followed logs last as long as they last (the
  // caller's signal ends them).
  const slow = connectDocker({
    ...options.engine,
    timeoutMs: (options.engine?.timeoutMs ?? 30_000) + grace * 1000,
  })
  const untimed = connectDocker({ ...options.engine, timeoutMs: 0 })
  const hostIp = hardening.hostIp
  const publicHost = options.publicHost ?? (hostIp === '0.0.0.0' ? 'localhost' : hostIp)
  const sized = options.sizedVolumesDir ? createLoopVolumes(options.sizedVolumesDir) : undefined
  const settings: ApplySettings = {
    hardening,
    ...(sized ? { sizedVolumes: sized } : {}),
    allocatePort: options.allocatePort ?? osFreePort(hostIp),
    ...(options.blockPort ? { blockPort: options.blockPort } : {}),
    pullAttempts: options.pullAttempts ?? 3,
    pullRetryDelayMs: options.pullRetryDelayMs ?? 1000,
    registryAuths: options.registryAuths ?? [],
    scope: options.scope,
  }
  const { scope } = options

  const images = createImagePolicy({
    allowedRegistries: options.allowedRegistries ?? [],
    deniedRegistries: options.deniedRegistries ?? [],
    registryAuths: options.registryAuths ?? [],
    ...(options.resolveRegistry ? { resolve: options.resolveRegistry } : {}),
  })

  const engineSize = createEngineSize(docker, options.overcommit ?? 1)

  const inspect = (deploymentId: string) =>
    translating(`inspect deployment ${deploymentId}`, () => inspectDeployment(docker, deploymentId, scope))
  const observe = async (deploymentId: string) =>
    observedOf(deploymentId, await inspect(deploymentId), publicHost, scope)

  /** Runs `act` on each container of the deployment, ignoring containers removed meanwhile. */
  async function eachContainer(
    deploymentId: string,
    what: string,
    act: (container: Docker.Container, info: Docker.ContainerInspectInfo) => Promise<unknown>,
  ): Promise<Docker.ContainerInspectInfo[]> {
    const infos = await inspect(deploymentId)
    for (const info of infos) {
      try {
        await act(slow.getContainer(info.Id), info)
      } catch (error) {
        if (isNotFound(error) || isNotModified(error)) continue
        throw toProviderError(error, `${what} container ${info.Name}`)
      }
    }
    return infos
  }

  /** The deployment's containers, then its owner's network if nothing else uses it. */
  async function removeContainers(deploymentId: string): Promise<void> {
    const infos = await inspect(deploymentId)
    for (const info of infos) await removeContainer(docker, info.Id)
    const owners = new Set(infos.map((i) => i.Config.Labels?.['berth.owner']).filter((o) => o !== undefined))
    for (const owner of owners) await removeOwnerNetworkIfUnused(docker, owner, scope)
  }

  return {
    name: options.name ?? 'docker',
    capabilities: { gpu: false, volumes: true, replicas: true, services: true },

    async ping() {
      try {
        await docker.ping()
        return true
      } catch {
        return false
      }
    },

    checkImage: (image, requester) => images.check(image, requester),

    capacity: () => engineSize.get(),

    async apply(target: DockerDeploymentTarget, ctx) {
      const ids = await applyDeployment({ docker, untimed }, settings, target, ctx)
      const infos = await translating(`inspect deployment ${target.id}`, () =>
        inspectContainers(docker, ids, scope),
      )
      return (
        observedOf(target.id, infos, publicHost, scope) ?? {
          deploymentId: target.id,
          instances: [],
          endpoints: [],
        }
      )
    },

    observe,

    async stop(deploymentId) {
      await eachContainer(deploymentId, 'stop', async (container, info) => {
        if (info.State.Running) await container.stop({ t: grace })
      })
    },

    async restart(deploymentId) {
      if (sized) await remountSizedVolumes(docker, deploymentId, scope, sized)
      // Restart starts a stopped container too, so `restart` always ends with every replica running.
      await eachContainer(deploymentId, 'restart', (container) => container.restart({ t: grace }))
    },

    async remove(deploymentId) {
      await removeContainers(deploymentId)
      // Volumes and ports go only after the containers: a failure above is retried with them intact.
      // An operator who keeps volumes (volumeRetention: keep) removes them by hand, by label.
      if (options.volumeRetention !== 'keep') await removeVolumes(docker, deploymentId, scope, sized)
      await options.releasePorts?.(deploymentId)
    },

    async exec(deploymentId, command) {
      const results = []
      for (const info of await inspect(deploymentId)) {
        if (!info.State.Running) continue
        const replica = Number(info.Config.Labels?.[LABEL.replica] ?? 0)
        const result = await translating(`run a command in ${info.Name}`, () =>
          execInContainer(untimed.getContainer(info.Id), command),
        )
        results.push({ replica, ...result })
      }
      return results
    },

    async release(deploymentId) {
      await removeContainers(deploymentId)
      await options.releasePorts?.(deploymentId)
    },

    async logs(deploymentId, options) {
      const infos = (await inspect(deploymentId)).filter(
        (info) => options.service === undefined || info.Config.Labels?.[LABEL.service] === options.service,
      )
      return readReplicaLogs(
        infos.map((info) => ({
          name: info.Name,
          open: (share) => untimed.getContainer(info.Id).logs(engineLogOptions(share)),
        })),
        options,
      )
    },

    async stats(deploymentId) {
      const samples: Array<{ service: string | undefined; usage: Usage }> = []
      for (const info of await inspect(deploymentId)) {
        if (!info.State.Running) continue
        try {
          const sample = await docker.getContainer(info.Id).stats({ stream: false })
          samples.push({
            service: info.Config.Labels?.[LABEL.service],
            usage: usageOf(sample as EngineStats),
          })
        } catch (error) {
          if (!isNotFound(error)) throw toProviderError(error, `read stats of ${info.Name}`)
        }
      }
      return usageByService(samples)
    },

    // The event stream lasts as long as it lasts: the untimed client.
    watch: (watcher, signal) => watchContainerEvents(untimed, watcher, signal, options.watchRetry, scope),

    sweepUnused: () => removeUnusedOwnerNetworks(docker, options.networkSweepMinAgeMs ?? 60_000, scope),

    async list() {
      const summaries = await translating('list containers', () =>
        docker.listContainers({ all: true, filters: { label: [managedFilterOf(scope)] } }),
      )
      return summaries.map((summary) => summaryInstanceOf(summary, scope)).filter((i) => i !== null)
    },
  }
}
