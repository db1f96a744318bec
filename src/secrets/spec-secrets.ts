import type { Tx } from '../db/client.ts'
import type { DeploymentSpec } from '../domain/spec.ts'
import { isSealed } from './envelope.ts'
import type { SealedPlace, Vault } from './vault.ts'

// A spec's `secretEnv` values are kept sealed in the stored spec (its other env values stay
// readable): each is bound to its owner, its deployment and its variable's name. They are opened
// only on the way to a provider, and views show the names without the values.

export const secretEnvPlaceOf = (ownerId: string, deploymentId: string, name: string): SealedPlace => ({
  ownerId,
  row: `deployment:${deploymentId}`,
  field: `env.${name}`,
})

type Owned = { ownerId: string; deploymentId: string }

async function mapSecretEnv(
  spec: DeploymentSpec,
  change: (name: string, value: string) => Promise<string>,
): Promise<DeploymentSpec> {
  const names = [...new Set(spec.secretEnv ?? [])].filter((name) => spec.env?.[name] !== undefined)
  if (names.length === 0) return spec
  const env = { ...spec.env }
  for (const name of names) env[name] = await change(name, env[name]!)
  return { ...spec, env }
}

/** Seals every secret env value of a spec a request gave (always plaintext, whatever it looks like). */
export function sealSpecSecrets(
  vault: Pick<Vault, 'seal'>,
  at: Owned,
  spec: DeploymentSpec,
): Promise<DeploymentSpec> {
  return mapSecretEnv(spec, (name, value) =>
    vault.seal(secretEnvPlaceOf(at.ownerId, at.deploymentId, name), value),
  )
}

/** Seals the values an older berth stored in the clear; sealed ones are left as they are. */
export function sealLegacySpecSecrets(
  vault: Pick<Vault, 'seal'>,
  at: Owned,
  spec: DeploymentSpec,
): Promise<DeploymentSpec> {
  return mapSecretEnv(spec, async (name, value) =>
    isSealed(value) ? value : vault.seal(secretEnvPlaceOf(at.ownerId, at.deploymentId, name), value),
  )
}

/**
 * The spec with its secret env values opened. A value in the clear is one berth itself wrote (an
 * older replica during an upgrade, before the start that seals it; a value berth sets, such as
 * OWNER_ADDRESS) and is given as it is: every value a request gave was sealed before it was stored.
 */
export function openSpecSecrets(
  vault: Pick<Vault, 'open'>,
  at: Owned,
  spec: DeploymentSpec,
): Promise<DeploymentSpec> {
  return mapSecretEnv(spec, async (name, value) =>
    isSealed(value) ? vault.open(secretEnvPlaceOf(at.ownerId, at.deploymentId, name), value) : value,
  )
}

/** The spec as its owner sees it: secret env variables named in `secretEnv`, their values left out. */
export function withoutSecretValues(spec: DeploymentSpec): DeploymentSpec {
  const names = new Set(spec.secretEnv ?? [])
  if (names.size === 0 || !spec.env) return spec
  return { ...spec, env: Object.fromEntries(Object.entries(spec.env).filter(([name]) => !names.has(name))) }
}

/**
 * The spec's secret env values sealed for another owner (an NFT's next holder, when its collection
 * carries secrets over), inside the transaction that hands the deployment over.
 */
export function resealSpecSecrets(
  vault: Pick<Vault, 'seal' | 'open'>,
  from: Owned,
  to: Owned,
  spec: DeploymentSpec,
  tx: Tx,
): Promise<DeploymentSpec> {
  return mapSecretEnv(spec, async (name, value) =>
    vault.seal(
      secretEnvPlaceOf(to.ownerId, to.deploymentId, name),
      isSealed(value)
        ? await vault.open(secretEnvPlaceOf(from.ownerId, from.deploymentId, name), value, tx)
        : value,
      tx,
    ),
  )
}
