// What berth writes on the containers and networks it owns. Labels are how berth finds its own
// work again after a crash (adoption) and how it never touches anything else (orphan sweeps list
// by `berth.managed=true` only).

export const LABEL = {
  managed: 'berth.managed',
  deployment: 'berth.deployment',
  owner: 'berth.owner',
  /** The instance's number across the deployment (services' replicas one after another). */
  replica: 'berth.replica',
  /** The service an instance runs, on a multi-service deployment's instances only. */
  service: 'berth.service',
  /** Labels are immutable, so a container carries the restart generation it was created for. */
  restartGeneration: 'berth.restart-generation',
} as const

/** Spec label that asks for a read-only root filesystem (with a tmpfs /tmp): "true" or "false". */
export const READ_ONLY_ROOTFS_LABEL = 'berth.docker/read-only-rootfs'

/**
 * Whose berth resources on an engine these are: the docker provider's (undefined) or one fleet
 * node's (its id). Several agents may share one engine (the fleet's tests do, as may a large host
 * split into nodes), and an agent may share one with a docker provider: each sees, changes and
 * removes only its own containers, networks and volumes.
 */
export type EngineScope = string | undefined

/** The value of `berth.managed` on what this scope owns. */
export const managedValueOf = (scope: EngineScope) => (scope ? `node-${scope}` : 'true')
export const managedFilterOf = (scope: EngineScope) => `${LABEL.managed}=${managedValueOf(scope)}`
export const MANAGED_FILTER = managedFilterOf(undefined)

export function containerNameOf(deploymentId: string, replica: number, scope?: EngineScope): string {
  return scope ? `berth-node-${scope}-${deploymentId}-${replica}` : `berth-${deploymentId}-${replica}`
}

/**
 * One bridge network per owner. The name carries a short prefix of the owner id for people
 * reading `docker network ls`; the `berth.owner` label carries the whole id and is checked before
 * a network is used, so a prefix collision can never put two owners on one network.
 */
export function networkNameOf(ownerId: string, scope?: EngineScope): string {
  const hex = ownerId.toLowerCase().replace(/[^0-9a-f]/g, '')
  const prefix = (hex.length >= 12 ? hex : ownerId.toLowerCase().replace(/[^0-9a-z]/g, '')).slice(0, 12)
  return scope ? `berth-node-${scope}-owner-${prefix}` : `berth-owner-${prefix}`
}

/** The key of one published port: `"<replica>/<containerPort>/<protocol>"`. */
export function portKeyOf(replica: number, containerPort: number, protocol: 'tcp' | 'udp'): string {
  return `${replica}/${containerPort}/${protocol}`
}

export interface ContainerIdentity {
  deploymentId: string
  ownerId: string
  replica: number
  restartGeneration: number
  /** Null on a single-image deployment's instances. */
  service: string | null
}

/** The berth identity of a labelled container, or null when its labels are not berth's. */
export function identityOf(
  labels: Record<string, string> | undefined,
  scope?: EngineScope,
): ContainerIdentity | null {
  return workloadIdentityOf(labels, managedValueOf(scope))
}

/** The identity a workload's labels carry (a container's, a Swarm service's) when `berth.managed` is `managed`. */
export function workloadIdentityOf(
  labels: Record<string, string> | undefined,
  managed: string,
): ContainerIdentity | null {
  if (labels?.[LABEL.managed] !== managed) return null
  const deploymentId = labels[LABEL.deployment]
  const ownerId = labels[LABEL.owner]
  const replica = Number(labels[LABEL.replica])
  const restartGeneration = Number(labels[LABEL.restartGeneration] ?? 0)
  if (!deploymentId || !ownerId || !Number.isInteger(replica) || replica < 0) return null
  return {
    deploymentId,
    ownerId,
    replica,
    restartGeneration: Number.isInteger(restartGeneration) ? restartGeneration : 0,
    service: labels[LABEL.service] ?? null,
  }
}
