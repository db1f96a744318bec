import type Docker from 'dockerode'
import { workloadsOf } from '../../domain/services.ts'
import { type DeploymentTarget, ProviderError } from '../provider.ts'
import { isNotFound, toProviderError, translating } from './errors.ts'
import { type EngineScope, LABEL, managedFilterOf, managedValueOf } from './labels.ts'
import type { SizedVolumes } from './sized-volumes.ts'

// A deployment's volumes: Docker named volumes `berth-<deployment>-<name>`, labelled
// like its containers. A recreated container mounts the same volume, so data outlives restarts
// and stops; only `remove` (a delete) removes the volumes.
//
// `sizeMb` is enforced when the provider has sized volumes (sized-volumes.ts: a loop-mounted
// filesystem of that size per volume); otherwise it is recorded as a label only, since the
// engine's `local` driver cannot limit a plain named volume here.

export interface VolumeSpec {
  name: string
  mountPath: string
  sizeMb?: number
}

export interface VolumeMount {
  /** The spec's name for it. */
  name: string
  /** The engine's volume name. */
  source: string
  mountPath: string
}

const SIZE_LABEL = 'berth.volume-size-mb'
const NAME_PATTERN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/

/**
 * The engine's name of a deployment's volume. A new generation (a new NFT holder who does not get
 * the old holder's data) gets new names; `_` cannot occur in a volume's own name, so no name of
 * one generation can be read as another's.
 */
export function volumeNameOf(
  deploymentId: string,
  name: string,
  generation = 0,
  scope?: EngineScope,
): string {
  const base =
    generation === 0 ? `berth-${deploymentId}-${name}` : `berth-${deploymentId}_${generation}-${name}`
  return scope ? `berth-node-${scope}-${base.slice('berth-'.length)}` : base
}

/**
 * The spec's volumes (every service's, for a multi-service spec). Read defensively: the spec schema
 * validates them, but the provider turns them into engine names and mount targets, so it checks
 * what it relies on once more: names unique in the deployment, mount paths unique per workload.
 */
export function volumesOf(spec: DeploymentTarget['spec']): VolumeSpec[] {
  const all: VolumeSpec[] = []
  const names = new Set<string>()
  for (const workload of workloadsOf(spec)) {
    const paths = new Set<string>()
    for (const volume of (workload.spec as { volumes?: VolumeSpec[] }).volumes ?? []) {
      const bad = (why: string) =>
        new ProviderError('permanent', `volume ${JSON.stringify(volume.name)}: ${why}`, {
          eventType: 'invalid_volume',
        })
      if (typeof volume.name !== 'string' || !NAME_PATTERN.test(volume.name) || volume.name.length > 63) {
        throw bad('the name must be a DNS label')
      }
      if (
        typeof volume.mountPath !== 'string' ||
        !volume.mountPath.startsWith('/') ||
        volume.mountPath === '/'
      ) {
        throw bad('the mount path must be an absolute path other than /')
      }
      if (names.has(volume.name)) throw bad('listed twice')
      if (paths.has(volume.mountPath)) throw bad(`another volume is mounted at ${volume.mountPath}`)
      names.add(volume.name)
      paths.add(volume.mountPath)
      all.push(volume)
    }
  }
  return all
}

/** Creates the deployment's volumes that are missing; refuses a same-named volume that is not its own. */
export async function ensureVolumes(
  docker: Docker,
  target: DeploymentTarget,
  scope?: EngineScope,
  sized?: { volumes: SizedVolumes; owner: () => Promise<{ uid: number; gid: number } | undefined> },
): Promise<VolumeMount[]> {
  const mounts: VolumeMount[] = []
  for (const volume of volumesOf(target.spec)) {
    const source = volumeNameOf(target.id, volume.name, target.volumeGeneration ?? 0, scope)
    // Made and mounted before the engine's volume is looked at: after a host restart the mount
    // is gone, and a container started on the bare directory would write to the host's disk.
    const driverOptions =
      volume.sizeMb && sized
        ? await sized.volumes.prepare(source, volume.sizeMb, await sized.owner())
        : undefined
    let info = await inspectVolume(docker, source)
    if (!info) {
      // Creating an existing name returns that volume, so a concurrent create is harmless; the
      // labels are checked on what the engine answers either way.
      await translating(`create volume ${source}`, () =>
        docker.createVolume({
          Name: source,
          Driver: 'local',
          ...(driverOptions ? { DriverOpts: driverOptions } : {}),
          Labels: {
            [LABEL.managed]: managedValueOf(scope),
            [LABEL.deployment]: target.id,
            [LABEL.owner]: target.ownerId,
            ...(volume.sizeMb ? { [SIZE_LABEL]: String(volume.sizeMb) } : {}),
          },
        }),
      )
      info = await inspectVolume(docker, source)
      if (!info) throw new ProviderError('transient', `volume ${source} vanished while being created`)
    }
    // The deployment, not the owner: volumes carried over to a new NFT holder keep the label of
    // the holder who created them.
    if (info.Labels?.[LABEL.deployment] !== target.id) {
      throw new ProviderError('permanent', `a volume named ${source} exists and is not this deployment's`, {
        eventType: 'volume_conflict',
      })
    }
    mounts.push({ name: volume.name, source, mountPath: volume.mountPath })
  }
  return mounts
}

async function inspectVolume(docker: Docker, name: string): Promise<Docker.VolumeInspectInfo | null> {
  try {
    return await docker.getVolume(name).inspect()
  } catch (error) {
    if (isNotFound(error)) return null
    throw toProviderError(error, `inspect volume ${name}`)
  }
}

/** Mounts the deployment's sized volumes again (a host restart unmounts them), before a restart. */
export async function remountSizedVolumes(
  docker: Docker,
  deploymentId: string,
  scope: EngineScope,
  sized: SizedVolumes,
): Promise<void> {
  const listed = await translating('list volumes', () =>
    docker.listVolumes({
      filters: { label: [managedFilterOf(scope), `${LABEL.deployment}=${deploymentId}`, SIZE_LABEL] },
    }),
  )
  for (const volume of listed.Volumes ?? []) {
    await sized.prepare(volume.Name, Number(volume.Labels?.[SIZE_LABEL]))
  }
}

/** Removes the deployment's volumes; call after its containers are gone. */
export async function removeVolumes(
  docker: Docker,
  deploymentId: string,
  scope?: EngineScope,
  sized?: SizedVolumes,
): Promise<void> {
  const listed = await translating('list volumes', () =>
    docker.listVolumes({
      filters: { label: [managedFilterOf(scope), `${LABEL.deployment}=${deploymentId}`] },
    }),
  )
  for (const volume of listed.Volumes ?? []) {
    try {
      await docker.getVolume(volume.Name).remove()
    } catch (error) {
      // Gone already. A volume still in use (a concurrent apply) is a 409: transient, retried.
      if (!isNotFound(error)) throw toProviderError(error, `remove volume ${volume.Name}`)
    }
    // Its filesystem, once nothing mounts it.
    if (volume.Labels?.[SIZE_LABEL]) await sized?.remove(volume.Name)
  }
}
