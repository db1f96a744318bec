import { LABEL, networkNameOf, workloadIdentityOf } from '../docker/labels.ts'

// What berth writes on the Swarm services, networks, secrets and volumes it owns. The label keys
// are the docker provider's; the `berth.managed` value is `swarm`, so a docker provider on the
// same engine (a one-node swarm is also a plain engine) never takes a Swarm task's container for
// one of its own, and the other way round.

export { LABEL }

export const SWARM_MANAGED = 'swarm'
export const SWARM_FILTER = `${LABEL.managed}=${SWARM_MANAGED}`
/** Which spec env variable a secret holds. */
export const SECRET_ENV_LABEL = 'berth.env'

/** One service per replica: `berth-<deployment>-<replica>`. */
export function serviceNameOf(deploymentId: string, replica: number): string {
  return `berth-${deploymentId}-${replica}`
}

/** One attachable overlay network per owner; the full owner id is in its label. */
export function overlayNameOf(ownerId: string): string {
  return `berth-swarm-${networkNameOf(ownerId).slice('berth-'.length)}`
}

/**
 * Swarm secrets cannot change, and their values cannot be read back: a new value is a new secret.
 * Values change only with a new restart generation (a changed spec is restarted), so a secret is
 * named by the generation and the variable's place in `secretEnv`, and carries nothing derived
 * from its value.
 */
export function secretNameOf(deploymentId: string, restartGeneration: number, index: number): string {
  return `berth-${deploymentId}-g${restartGeneration}-${index}`
}

/** The berth identity of a labelled service, or null when its labels are not berth's. */
export const serviceIdentityOf = (labels: Record<string, string> | undefined) =>
  workloadIdentityOf(labels, SWARM_MANAGED)

/** The label filter for one deployment's services (and its secrets, pins and volumes). */
export const deploymentFilter = (deploymentId: string) => [
  SWARM_FILTER,
  `${LABEL.deployment}=${deploymentId}`,
]
