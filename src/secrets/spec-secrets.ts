import type { Tx } from '../db/client.ts'
import { type EnvHolder, mapEnv } from '../domain/services.ts'
import type { DeploymentSpec } from '../domain/spec.ts'
import { isSealed } from './envelope.ts'
import type { SealedPlace, Vault } from './vault.ts'

// A spec's `secretEnv` values are kept sealed in the stored spec (its other env values stay
// readable): each is bound to its owner, its deployment and its variable's name. They are opened
// only on the way to a provider, and views show the names without the values.

/**
 * Where a secret env value is sealed: its owner, its deployment and its variable, and for a
 * multi-service spec its service (the same variable of two services never opens as the other's).
 */
export const secretEnvPlaceOf = (
  ownerId: string,
  deploymentId: string,
  name: string,
  service: string | null = null,
): SealedPlace => ({
  ownerId,
  row: `deployment:${deploymentId}`,
  field: service === null ? `env.${name}` : `services.${service}.env.${name}`,
})

type Owned = { ownerId: string; deploymentId: string }

function mapSecretEnv(
  spec: DeploymentSpec,
  change: (name: string, value: string, service: string | null) => Promise<string>,
): Promise<DeploymentSpec> {
  return mapEnv(spec, async (holder, service) => {
    const names = [...new Set(holder.secretEnv ?? [])].filter((name) => holder.env?.[name] !== undefined)
    if (names.length === 0) return holder.env
    const env = { ...holder.env }
    for (const name of names) env[name] = await change(name, env[name]!, service)
    return env
  })
}

/** Seals every secret env value of a spec a request gave (always plaintext, whatever it looks like). */
export function sealSpecSecrets(
  vault: Pick<Vault, 'seal'>,
  at: Owned,
  spec: DeploymentSpec,
): Promise<DeploymentSpec> {
  return mapSecretEnv(spec, (name, value, service) =>
    vault.seal(secretEnvPlaceOf(at.ownerId, at.deploymentId, name, service), value),
  )
}

/** Seals the values an older berth stored in the clear; sealed ones are left as they are. */
export function sealLegacySpecSecrets(
  vault: Pick<Vault, 'seal'>,
  at: Owned,
  spec: DeploymentSpec,
): Promise<DeploymentSpec> {
  return mapSecretEnv(spec, async (name, value, service) =>
    isSealed(value) ? value : vault.seal(secretEnvPlaceOf(at.ownerId, at.deploymentId, name, service), value),
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
  return mapSecretEnv(spec, async (name, value, service) =>
    isSealed(value) ? vault.open(secretEnvPlaceOf(at.ownerId, at.deploymentId, name, service), value) : value,
  )
}

/** The spec as its owner sees it: secret env variables named in `secretEnv`, their values left out. */
export function withoutSecretValues(spec: DeploymentSpec): DeploymentSpec {
  const strip = <H extends EnvHolder>(holder: H): H => {
    const names = new Set(holder.secretEnv ?? [])
    if (names.size === 0 || !holder.env) return holder
    return {
      ...holder,
      env: Object.fromEntries(Object.entries(holder.env).filter(([name]) => !names.has(name))),
    }
  }
  return spec.services ? { ...spec, services: spec.services.map(strip) } : strip(spec)
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
  return mapSecretEnv(spec, async (name, value, service) =>
    vault.seal(
      secretEnvPlaceOf(to.ownerId, to.deploymentId, name, service),
      isSealed(value)
        ? await vault.open(secretEnvPlaceOf(from.ownerId, from.deploymentId, name, service), value, tx)
        : value,
      tx,
    ),
  )
}
