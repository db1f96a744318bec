import type Docker from 'dockerode'
import { isConflict, isNotFound, toProviderError, translating } from '../docker/errors.ts'
import type { SingleImageTarget } from '../provider.ts'
import { LABEL, SECRET_ENV_LABEL, SWARM_FILTER, SWARM_MANAGED, secretNameOf } from './labels.ts'

// A deployment's `secretEnv` values as Swarm secrets: the managers keep them encrypted in their
// Raft log and hand them only to the nodes running the deployment's tasks, which mount them as
// files under /run/secrets (in memory). The variable itself is not set; `NAME_FILE` points at
// the file. A changed value is a new secret (they cannot change); the old one is removed once no
// service uses it, and all of them with the deployment.

export interface SecretRef {
  envName: string
  secretId: string
  secretName: string
}

/** Creates the deployment's secrets that are missing; returns one per secret env variable. */
export async function ensureSecrets(docker: Docker, target: SingleImageTarget): Promise<SecretRef[]> {
  const refs: SecretRef[] = []
  const env = target.spec.env ?? {}
  for (const [index, envName] of (target.spec.secretEnv ?? []).entries()) {
    const value = env[envName]
    if (value === undefined) continue // named secret but not given: nothing to hide
    const name = secretNameOf(target.id, target.restartGeneration, index)
    const secretId = await translating(`create secret for ${envName}`, async () => {
      try {
        const created = (await docker.createSecret({
          Name: name,
          Data: Buffer.from(value, 'utf8').toString('base64'),
          Labels: {
            [LABEL.managed]: SWARM_MANAGED,
            [LABEL.deployment]: target.id,
            [LABEL.owner]: target.ownerId,
            [SECRET_ENV_LABEL]: envName,
            [LABEL.restartGeneration]: String(target.restartGeneration),
          },
        })) as unknown as { id: string }
        return created.id
      } catch (error) {
        // Made by an earlier try for this generation: the same value.
        if (!isConflict(error)) throw error
        return ((await docker.getSecret(name).inspect()) as { ID: string }).ID
      }
    })
    refs.push({ envName, secretId, secretName: name })
  }
  return refs
}

/**
 * Removes the deployment's secrets, all of them or all but `keep` (ids: an apply dropping values
 * it replaced). While pruning, one a service still uses (its update has not finished) is refused
 * by the managers and left for the next apply or the removal.
 */
export async function removeSecrets(
  docker: Docker,
  deploymentId: string,
  options: { keep?: string[] } = {},
): Promise<void> {
  const keep = options.keep ?? []
  const secrets = await translating('list secrets', () =>
    docker.listSecrets({ filters: { label: [SWARM_FILTER, `${LABEL.deployment}=${deploymentId}`] } }),
  )
  for (const secret of secrets as Array<{ ID: string; Spec?: { Name?: string } }>) {
    if (keep.includes(secret.ID)) continue
    try {
      await docker.getSecret(secret.ID).remove()
    } catch (error) {
      if (isNotFound(error)) continue
      // "in use by service": still mounted while a task is being replaced.
      if ((error as { statusCode?: number }).statusCode === 400 && options.keep) continue
      throw toProviderError(error, `remove secret ${secret.Spec?.Name ?? secret.ID}`)
    }
  }
}

/**
 * Secrets of deployments that have no service left (a control plane stopped between the two
 * removals), older than `minAgeMs`, so one made for a service about to be created is left alone.
 */
export async function removeUnusedSecrets(docker: Docker, minAgeMs: number): Promise<number> {
  return translating('sweep secrets', async () => {
    const secrets = (await docker.listSecrets({ filters: { label: [SWARM_FILTER] } })) as Array<{
      ID: string
      CreatedAt?: string
      Spec?: { Labels?: Record<string, string> }
    }>
    const services = await docker.listServices({ filters: { label: [SWARM_FILTER] } })
    const inUse = new Set(services.map((s) => s.Spec?.Labels?.[LABEL.deployment]))
    let removed = 0
    for (const secret of secrets) {
      if (inUse.has(secret.Spec?.Labels?.[LABEL.deployment])) continue
      if (Date.now() - Date.parse(secret.CreatedAt ?? '') < minAgeMs) continue
      try {
        await docker.getSecret(secret.ID).remove()
        removed++
      } catch (error) {
        if (!isNotFound(error)) throw error
      }
    }
    return removed
  })
}
