import type Docker from 'dockerode'
import { isConflict, isNotFound, toProviderError, translating } from '../docker/errors.ts'
import type { DeploymentTarget } from '../provider.ts'
import {
  LABEL,
  SECRET_DIGEST_LABEL,
  SECRET_ENV_LABEL,
  SWARM_FILTER,
  SWARM_MANAGED,
  secretDigestOf,
  secretNameOf,
} from './labels.ts'

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
export async function ensureSecrets(docker: Docker, target: DeploymentTarget): Promise<SecretRef[]> {
  const refs: SecretRef[] = []
  const env = target.spec.env ?? {}
  for (const envName of target.spec.secretEnv ?? []) {
    const value = env[envName]
    if (value === undefined) continue // named secret but not given: nothing to hide
    const name = secretNameOf(target.id, envName, value)
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
            [SECRET_DIGEST_LABEL]: secretDigestOf(target.id, envName, value),
          },
        })) as unknown as { id: string }
        return created.id
      } catch (error) {
        // Made by an earlier try (the name carries the value's digest): the same secret.
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
