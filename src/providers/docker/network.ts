import type Docker from 'dockerode'
import { ProviderError } from '../provider.ts'
import { isConflict, isNotFound, statusOf, translating } from './errors.ts'
import { LABEL, networkNameOf } from './labels.ts'

// One bridge network per owner: the engine isolates bridge networks from each other, so owners
// cannot reach each other's containers, while one owner's containers share theirs.

async function findByName(docker: Docker, name: string): Promise<Docker.NetworkInspectInfo | undefined> {
  // The engine's name filter matches substrings; only the exact name counts.
  const found = await docker.listNetworks({ filters: { name: [name] } })
  return found.find((n) => n.Name === name)
}

function assertOwner(network: Docker.NetworkInspectInfo, ownerId: string): void {
  if (network.Labels?.[LABEL.owner] !== ownerId) {
    throw new ProviderError(
      'permanent',
      `network ${network.Name} exists but is not this owner's; refusing to share it`,
      { eventType: 'network_conflict' },
    )
  }
}

/** Creates the owner's network if it does not exist yet; returns its name. Safe to race. */
export async function ensureOwnerNetwork(docker: Docker, ownerId: string): Promise<string> {
  const name = networkNameOf(ownerId)
  return translating(`create network ${name}`, async () => {
    const existing = await findByName(docker, name)
    if (existing) {
      assertOwner(existing, ownerId)
      return name
    }
    try {
      await docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        // Engines before API 1.44 allow two networks with one name unless asked not to.
        CheckDuplicate: true,
        Labels: { [LABEL.managed]: 'true', [LABEL.owner]: ownerId },
      })
    } catch (error) {
      // Created concurrently by another step: that network is the one we want.
      if (!isConflict(error)) throw error
      const raced = await findByName(docker, name)
      if (!raced) throw error
      assertOwner(raced, ownerId)
    }
    return name
  })
}

/**
 * Removes the owner's network once none of the owner's containers is left, running or not (a
 * stopped container still needs its network to start again). A create racing with this may find
 * the network gone; the provider then ensures it again and retries the create.
 */
export async function removeOwnerNetworkIfUnused(docker: Docker, ownerId: string): Promise<void> {
  const name = networkNameOf(ownerId)
  await translating(`remove network ${name}`, async () => {
    const existing = await findByName(docker, name)
    if (!existing || existing.Labels?.[LABEL.owner] !== ownerId) return
    const users = await docker.listContainers({
      all: true,
      filters: { label: [`${LABEL.managed}=true`, `${LABEL.owner}=${ownerId}`] },
    })
    if (users.length > 0) return
    try {
      await docker.getNetwork(existing.Id).remove()
    } catch (error) {
      // Gone already, or a container attached meanwhile ("has active endpoints"): leave it.
      if (isNotFound(error) || isConflict(error) || statusOf(error) === 403) return
      throw error
    }
  })
}
