import type Docker from 'dockerode'
import { ProviderError } from '../provider.ts'
import { engineStatusOf, isConflict, isNotFound, translating } from './errors.ts'
import { type EngineScope, LABEL, managedFilterOf, managedValueOf, networkNameOf } from './labels.ts'

// One bridge network per owner: the engine isolates bridge networks from each other, so owners
// cannot reach each other's containers, while one owner's containers share theirs.
//
// Engines before API 1.44 check duplicate names only on a best-effort basis, so two concurrent
// creates can both succeed (seen on 20.10). Every caller therefore settles on one canonical
// network among those with the name (the oldest, then the smallest id), removes its own duplicate,
// and attaches containers by id: one owner's containers never end up split across two networks.

async function withName(docker: Docker, name: string): Promise<Docker.NetworkInspectInfo[]> {
  // The engine's name filter matches substrings; only the exact name counts.
  const found = await docker.listNetworks({ filters: { name: [name] } })
  return found
    .filter((n) => n.Name === name)
    .sort((a, b) => a.Created.localeCompare(b.Created) || a.Id.localeCompare(b.Id))
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

// Within one process, concurrent ensures for one owner share one attempt: a duplicate network is
// then only possible across processes, where the clean-up below settles it. Once found, the id is
// kept, so a deploy does not look the network up again. It can go stale when another process
// removes the network; creating a container on it then fails, and the caller forgets it and
// ensures it again (apply.ts).
interface EngineNetworks {
  known: Map<string, string>
  inFlight: Map<string, Promise<string>>
}
const byEngine = new WeakMap<Docker, EngineNetworks>()
function networksOf(docker: Docker): EngineNetworks {
  let networks = byEngine.get(docker)
  if (!networks) {
    networks = { known: new Map(), inFlight: new Map() }
    byEngine.set(docker, networks)
  }
  return networks
}

/** The owner's network id, created if missing. Safe to call concurrently, in and across processes. */
export function ensureOwnerNetwork(docker: Docker, ownerId: string, scope?: EngineScope): Promise<string> {
  const { known, inFlight } = networksOf(docker)
  const key = keyOf(ownerId, scope)
  const id = known.get(key)
  if (id) return Promise.resolve(id)
  const pending = inFlight.get(key)
  if (pending) return pending
  const attempt = ensureOnce(docker, ownerId, scope)
    .then((found) => {
      known.set(key, found)
      return found
    })
    .finally(() => inFlight.delete(key))
  inFlight.set(key, attempt)
  return attempt
}

const keyOf = (ownerId: string, scope: EngineScope) => (scope ? `${scope}/${ownerId}` : ownerId)

/** Drops the kept id: the network was found gone, or is being removed. */
export function forgetOwnerNetwork(docker: Docker, ownerId: string, scope?: EngineScope): void {
  networksOf(docker).known.delete(keyOf(ownerId, scope))
}

async function ensureOnce(docker: Docker, ownerId: string, scope: EngineScope): Promise<string> {
  const name = networkNameOf(ownerId, scope)
  return translating(`create network ${name}`, async () => {
    const existing = (await withName(docker, name))[0]
    if (existing) {
      assertOwner(existing, ownerId)
      return existing.Id
    }
    let mine: string | undefined
    try {
      mine = (
        await docker.createNetwork({
          Name: name,
          Driver: 'bridge',
          CheckDuplicate: true,
          Labels: { [LABEL.managed]: managedValueOf(scope), [LABEL.owner]: ownerId },
        })
      ).id
    } catch (error) {
      if (!isConflict(error)) throw error // a conflict: created concurrently, found below
    }
    const canonical = (await withName(docker, name))[0]
    if (!canonical) throw new ProviderError('transient', `network ${name} vanished while being created`)
    assertOwner(canonical, ownerId)
    if (mine && mine !== canonical.Id) await removeQuietly(docker, mine)
    return canonical.Id
  })
}

/**
 * Removes the owner's networks once none of the owner's containers is left, running or not (a
 * stopped container still needs its network to start again). A create racing with this may find
 * the network gone; the provider then ensures it again and retries the create.
 */
export async function removeOwnerNetworkIfUnused(
  docker: Docker,
  ownerId: string,
  scope?: EngineScope,
): Promise<void> {
  const name = networkNameOf(ownerId, scope)
  await translating(`remove network ${name}`, async () => {
    const users = await docker.listContainers({
      all: true,
      filters: { label: [managedFilterOf(scope), `${LABEL.owner}=${ownerId}`] },
    })
    if (users.length > 0) return
    forgetOwnerNetwork(docker, ownerId, scope)
    for (const network of await withName(docker, name)) {
      if (network.Labels?.[LABEL.owner] === ownerId) await removeQuietly(docker, network.Id)
    }
  })
}

/** True when it removed the network. */
async function removeQuietly(docker: Docker, id: string): Promise<boolean> {
  try {
    await docker.getNetwork(id).remove()
    return true
  } catch (error) {
    // Gone already, or a container attached meanwhile ("has active endpoints"): leave it.
    if (isNotFound(error) || isConflict(error) || engineStatusOf(error) === 403) return false
    throw error
  }
}

/**
 * Removes berth's owner networks that none of the owner's containers uses and that are older than
 * `minAgeMs`: ones left behind when a control plane died between removing an owner's last
 * container and its network. Each one holds a subnet of the engine's limited address pools. The
 * age keeps it off a network a deploy has just made and not yet attached to; a deploy that loses
 * the race anyway finds its network gone and makes it again.
 */
export async function removeUnusedOwnerNetworks(
  docker: Docker,
  minAgeMs: number,
  scope?: EngineScope,
): Promise<number> {
  return translating('sweep owner networks', async () => {
    const networks = await docker.listNetworks({ filters: { label: [managedFilterOf(scope)] } })
    const containers = await docker.listContainers({
      all: true,
      filters: { label: [managedFilterOf(scope)] },
    })
    const inUse = new Set(containers.map((c) => c.Labels[LABEL.owner]))
    let removed = 0
    for (const network of networks) {
      const owner = network.Labels?.[LABEL.owner]
      if (!owner || inUse.has(owner)) continue
      if (Date.now() - Date.parse(network.Created) < minAgeMs) continue
      forgetOwnerNetwork(docker, owner, scope)
      if (await removeQuietly(docker, network.Id)) removed++
    }
    return removed
  })
}
