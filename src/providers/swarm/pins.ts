import type Docker from 'dockerode'
import { isConflict, isNotFound, toProviderError, translating } from '../docker/errors.ts'
import { LABEL, SWARM_FILTER, SWARM_MANAGED } from './labels.ts'

// Which node holds a replica's `local` volumes. The placement constraint on the service says it
// too, but a service is removed when a failed deployment is rolled back while its volumes are
// kept, and a later start must find its data where it was left. So the pin is also written to
// the swarm itself, as a small Swarm config (kept in the managers' Raft log like the services),
// and removed with the deployment's volumes.

const PIN_LABEL = 'berth.pin'

/** One pin per replica and volume generation (a new generation starts on fresh volumes). */
export function pinNameOf(deploymentId: string, volumeGeneration: number, replica: number): string {
  return `berth-pin-${deploymentId}-v${volumeGeneration}-${replica}`
}

interface ConfigListing {
  ID: string
  Spec?: { Name?: string; Data?: string }
}

/** The node the replica's volumes live on, or null when it was never pinned. */
export async function readPin(
  docker: Docker,
  deploymentId: string,
  volumeGeneration: number,
  replica: number,
): Promise<string | null> {
  const name = pinNameOf(deploymentId, volumeGeneration, replica)
  return translating(`read pin ${name}`, async () => {
    try {
      const config = (await docker.getConfig(name).inspect()) as ConfigListing
      const node = Buffer.from(config.Spec?.Data ?? '', 'base64').toString('utf8')
      return node === '' ? null : node
    } catch (error) {
      if (isNotFound(error)) return null
      throw error
    }
  })
}

/**
 * Records the replica's node. Two concurrent first starts may both try: the first record wins,
 * and the node it names is returned, so both pin the same one.
 */
export async function savePin(
  docker: Docker,
  target: { id: string; ownerId: string; volumeGeneration: number },
  replica: number,
  nodeId: string,
): Promise<string> {
  const name = pinNameOf(target.id, target.volumeGeneration, replica)
  const saved = await translating(`save pin ${name}`, async () => {
    try {
      await docker.createConfig({
        Name: name,
        Data: Buffer.from(nodeId, 'utf8').toString('base64'),
        Labels: {
          [LABEL.managed]: SWARM_MANAGED,
          [LABEL.deployment]: target.id,
          [LABEL.owner]: target.ownerId,
          [LABEL.replica]: String(replica),
          [PIN_LABEL]: 'true',
        },
      })
      return true
    } catch (error) {
      if (!isConflict(error)) throw error
      return false
    }
  })
  if (saved) return nodeId
  return (await readPin(docker, target.id, target.volumeGeneration, replica)) ?? nodeId
}

/** Forgets where the deployment's volumes were: they are being removed. */
export async function removePins(docker: Docker, deploymentId: string): Promise<void> {
  const configs = (await translating('list pins', () =>
    docker.listConfigs({
      filters: { label: [SWARM_FILTER, `${LABEL.deployment}=${deploymentId}`, `${PIN_LABEL}=true`] },
    }),
  )) as unknown as ConfigListing[]
  for (const config of configs) {
    try {
      await docker.getConfig(config.ID).remove()
    } catch (error) {
      if (!isNotFound(error)) throw toProviderError(error, `remove pin ${config.Spec?.Name ?? config.ID}`)
    }
  }
}
