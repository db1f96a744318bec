import type { DeploymentSpec, HealthCheckSpec, SingleImageSpec } from './spec.ts'

// A deployment's workloads, for everything that runs, counts or checks them. A single-image spec
// is one workload; a multi-service spec is one per service. Each instance of a deployment has a
// number across the whole deployment (its `index`): the services' replicas one after another in
// the spec's order. Providers name, label and publish instances by that number, so everything
// keyed by a replica (host ports, probes, restarts) works for services unchanged.

export interface Workload {
  /** The service's name, or null for a single-image spec. */
  service: string | null
  /** What each of its instances runs, as a single-image spec (the deployment's own fields kept). */
  spec: SingleImageSpec
  /** Services that must be healthy before this one starts. */
  dependsOn: string[]
  /** The index of its first instance. */
  firstIndex: number
}

export interface DeploymentUnit {
  /** The instance's number across the deployment. */
  index: number
  service: string | null
  /** The replica within its service. */
  replica: number
  spec: SingleImageSpec
}

export function workloadsOf(spec: DeploymentSpec): Workload[] {
  if (!spec.services) return [{ service: null, spec, dependsOn: [], firstIndex: 0 }]
  const { services, ...deployment } = spec
  let next = 0
  return services.map(({ name, dependsOn, ...workload }) => {
    const firstIndex = next
    next += workload.replicas
    return { service: name, spec: { ...deployment, ...workload }, dependsOn: dependsOn ?? [], firstIndex }
  })
}

export function unitsOf(spec: DeploymentSpec): DeploymentUnit[] {
  return workloadsOf(spec).flatMap((w) =>
    Array.from({ length: w.spec.replicas }, (_, replica) => ({
      index: w.firstIndex + replica,
      service: w.service,
      replica,
      spec: w.spec,
    })),
  )
}

/** How many instances the deployment runs in all. */
export const instanceCountOf = (spec: DeploymentSpec): number =>
  workloadsOf(spec).reduce((sum, w) => sum + w.spec.replicas, 0)

/** The workload an instance number belongs to (undefined past the last). */
export function workloadOfIndex(spec: DeploymentSpec, index: number): Workload | undefined {
  return workloadsOf(spec).find((w) => index >= w.firstIndex && index < w.firstIndex + w.spec.replicas)
}

/** The service names of a multi-service spec; empty for a single-image one. */
export const serviceNamesOf = (spec: DeploymentSpec): string[] => spec.services?.map((s) => s.name) ?? []

/**
 * The order services start in: groups whose members depend only on services of earlier groups
 * (the spec forbids circles). A single-image spec is one group.
 */
export function startGroupsOf(spec: DeploymentSpec): Workload[][] {
  const pending = workloadsOf(spec)
  const started = new Set<string>()
  const groups: Workload[][] = []
  while (pending.length > 0) {
    const ready = pending.filter((w) => w.dependsOn.every((d) => started.has(d)))
    // Unreachable for a validated spec; a stored one is never worse than "start the rest".
    const group = ready.length > 0 ? ready : [...pending]
    for (const w of group) {
      pending.splice(pending.indexOf(w), 1)
      if (w.service) started.add(w.service)
    }
    groups.push(group)
  }
  return groups
}

/** The health check each instance is probed with (undefined: running is enough). */
export function checkOfIndex(spec: DeploymentSpec, index: number): HealthCheckSpec | undefined {
  return workloadOfIndex(spec, index)?.spec.healthCheck
}

export interface HealthTiming {
  intervalSeconds: number
  healthyThreshold: number
  unhealthyThreshold: number
}

/**
 * How often a deployment is judged and how many looks decide: its check's for a single image; for
 * services, one deployment is judged as a whole, at the shortest interval among their checks and
 * with the largest thresholds, so no service is looked at less often or trusted sooner than its
 * own check asks. Undefined when nothing is checked.
 */
export function healthTimingOf(spec: DeploymentSpec): HealthTiming | undefined {
  const checks = workloadsOf(spec).flatMap((w) => (w.spec.healthCheck ? [w.spec.healthCheck] : []))
  if (checks.length === 0) return undefined
  return {
    intervalSeconds: Math.min(...checks.map((c) => c.intervalSeconds)),
    healthyThreshold: Math.max(...checks.map((c) => c.healthyThreshold)),
    unhealthyThreshold: Math.max(...checks.map((c) => c.unhealthyThreshold)),
  }
}

/** Every image the deployment runs, each once. */
export const imagesOf = (spec: DeploymentSpec): string[] => [
  ...new Set(workloadsOf(spec).map((w) => w.spec.image)),
]

/** How people are told of an instance: `replica 2`, or `service db replica 0`. */
export function instanceNameOf(spec: DeploymentSpec, index: number): string {
  const workload = workloadOfIndex(spec, index)
  if (!workload?.service) return `replica ${index}`
  return `service ${workload.service} replica ${index - workload.firstIndex}`
}

/** What carries environment variables: a single-image spec, or one service. */
export interface EnvHolder {
  env?: Record<string, string>
  secretEnv?: string[]
}

/**
 * The spec with each workload's env replaced by what `change` makes of it (the spec itself for a
 * single image, each service otherwise); `service` says whose env it is. An absent env stays absent.
 */
export async function mapEnv(
  spec: DeploymentSpec,
  change: (holder: EnvHolder, service: string | null) => Promise<Record<string, string> | undefined>,
): Promise<DeploymentSpec> {
  const apply = async <H extends EnvHolder>(holder: H, service: string | null): Promise<H> => {
    const env = await change(holder, service)
    return env === holder.env ? holder : { ...holder, env }
  }
  if (!spec.services) return apply(spec, null)
  const services = []
  for (const service of spec.services) services.push(await apply(service, service.name))
  return { ...spec, services }
}

/**
 * A variable's value where the first workload that sets it has it, with that workload's service
 * (a template gives each of its services the same generated value).
 */
export function envValueOf(
  spec: DeploymentSpec,
  name: string,
): { value: string; service: string | null } | undefined {
  if (!spec.services) {
    const value = spec.env?.[name]
    return value === undefined ? undefined : { value, service: null }
  }
  const service = spec.services.find((s) => s.env?.[name] !== undefined)
  return service ? { value: service.env![name]!, service: service.name } : undefined
}

/** The spec with `change` made to each workload (the spec itself, or each service). */
export function mapWorkloads(
  spec: DeploymentSpec,
  change: <H extends EnvHolder>(holder: H, service: string | null) => H,
): DeploymentSpec {
  if (!spec.services) return change(spec, null)
  return { ...spec, services: spec.services.map((service) => change(service, service.name)) }
}
