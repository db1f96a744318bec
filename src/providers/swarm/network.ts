import type Docker from 'dockerode'
import { isConflict, isNotFound, translating } from '../docker/errors.ts'
import { ProviderError } from '../provider.ts'
import { LABEL, overlayNameOf, SWARM_FILTER, SWARM_MANAGED } from './labels.ts'

// One attachable overlay network per owner: an owner's services reach each other by name, two
// owners never share a network. The managers keep network names unique, so a concurrent create
// is a conflict and the loser uses the winner's network. With `encrypt`, the data plane between
// nodes is encrypted (IPsec), at some cost in throughput.

async function overlayOf(docker: Docker, name: string): Promise<Docker.NetworkInspectInfo | undefined> {
  // The engine's name filter matches substrings; only the exact name counts.
  const found = await docker.listNetworks({ filters: { name: [name] } })
  return found.find((n) => n.Name === name)
}

/** The owner's overlay network id, created if missing. */
export async function ensureOwnerOverlay(
  docker: Docker,
  ownerId: string,
  options: { encrypt: boolean },
): Promise<string> {
  const name = overlayNameOf(ownerId)
  return translating(`create network ${name}`, async () => {
    let network = await overlayOf(docker, name)
    if (!network) {
      try {
        await docker.createNetwork({
          Name: name,
          Driver: 'overlay',
          Attachable: true,
          CheckDuplicate: true,
          Labels: { [LABEL.managed]: SWARM_MANAGED, [LABEL.owner]: ownerId },
          ...(options.encrypt ? { Options: { encrypted: 'true' } } : {}),
        })
      } catch (error) {
        if (!isConflict(error)) throw error // created concurrently: found below
      }
      network = await overlayOf(docker, name)
    }
    if (!network) throw new ProviderError('transient', `network ${name} vanished while being created`)
    if (network.Labels?.[LABEL.owner] !== ownerId || network.Labels?.[LABEL.managed] !== SWARM_MANAGED) {
      throw new ProviderError(
        'permanent',
        `network ${name} exists but is not this owner's; refusing to share it`,
        {
          eventType: 'network_conflict',
        },
      )
    }
    return network.Id
  })
}

/**
 * Removes the owner's overlay once none of the owner's services is left. A service being created
 * meanwhile fails on the missing network; apply then ensures the network again and retries.
 */
export async function removeOwnerOverlayIfUnused(docker: Docker, ownerId: string): Promise<void> {
  const name = overlayNameOf(ownerId)
  await translating(`remove network ${name}`, async () => {
    const users = await docker.listServices({
      filters: { label: [SWARM_FILTER, `${LABEL.owner}=${ownerId}`] },
    })
    if (users.length > 0) return
    const network = await overlayOf(docker, name)
    if (network?.Labels?.[LABEL.owner] === ownerId) await removeQuietly(docker, network.Id)
  })
}

/**
 * Overlays whose owner has no service left (a control plane stopped between the two removals),
 * older than `minAgeMs`, so a network made for a service about to be created is left alone.
 */
export async function removeUnusedOverlays(docker: Docker, minAgeMs: number): Promise<number> {
  return translating('sweep owner networks', async () => {
    const networks = await docker.listNetworks({ filters: { label: [SWARM_FILTER] } })
    const services = await docker.listServices({ filters: { label: [SWARM_FILTER] } })
    const inUse = new Set(services.map((s) => s.Spec?.Labels?.[LABEL.owner]))
    let removed = 0
    for (const network of networks) {
      const owner = network.Labels?.[LABEL.owner]
      if (!owner || inUse.has(owner)) continue
      if (Date.now() - Date.parse(network.Created) < minAgeMs) continue
      if (await removeQuietly(docker, network.Id)) removed++
    }
    return removed
  })
}

async function removeQuietly(docker: Docker, id: string): Promise<boolean> {
  try {
    await docker.getNetwork(id).remove()
    return true
  } catch (error) {
    // Gone already, or still in use by a task shutting down: the next sweep takes it.
    if (isNotFound(error) || isConflict(error) || (error as { statusCode?: number }).statusCode === 403) {
      return false
    }
    throw error
  }
}
