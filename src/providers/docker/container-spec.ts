import type Docker from 'dockerode'
import type { SingleImageSpec } from '../../domain/spec.ts'
import type { InstanceState } from '../provider.ts'
import {
  containerNameOf,
  type EngineScope,
  LABEL,
  managedValueOf,
  portKeyOf,
  READ_ONLY_ROOTFS_LABEL,
} from './labels.ts'
import type { VolumeMount } from './volumes.ts'

// Pure: a deployment's spec → the engine's create options. All the hardening lives here, in one
// place a test can read without an engine.

export interface HardeningOptions {
  pidsLimit: number
  readOnlyRootfs: boolean
  stopGraceSeconds: number
  /** Host address published ports bind to (127.0.0.1 keeps them off the public interfaces). */
  hostIp: string
  /** json-file log rotation, so one chatty workload cannot fill the host's disk. */
  logMaxSize: string
  logMaxFiles: number
}

/** Which replica of which deployment a workload (a container, a Swarm service) runs. */
export interface ReplicaPlan {
  deploymentId: string
  ownerId: string
  replica: number
  restartGeneration: number
  /** What this instance runs: the deployment's single image, or its service's. */
  spec: SingleImageSpec
  /** The service it belongs to; null (or absent) for a single-image deployment. */
  service?: string | null
}

export interface ContainerPlan extends ReplicaPlan {
  /** The owner network's id (names can be duplicated transiently on older engines). */
  network: string
  /** Host port per `portKeyOf(replica, containerPort, protocol)`. */
  hostPorts: Record<string, number>
  /** The deployment's named volumes (never host paths). */
  volumes?: VolumeMount[]
  scope?: EngineScope
}

/**
 * Whether this deployment gets a read-only root filesystem: always when the operator says so, and
 * also when its spec label asks for it. A spec can only tighten the operator's hardening.
 */
export function wantsReadOnlyRootfs(spec: SingleImageSpec, operatorDefault: boolean): boolean {
  return operatorDefault || spec.labels?.[READ_ONLY_ROOTFS_LABEL] === 'true'
}

export function createOptionsOf(
  plan: ContainerPlan,
  hardening: HardeningOptions,
): Docker.ContainerCreateOptions {
  const { spec } = plan
  const memoryBytes = spec.resources.memoryMb * 1024 * 1024
  const readOnly = wantsReadOnlyRootfs(spec, hardening.readOnlyRootfs)
  const exposed: Record<string, object> = {}
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {}
  for (const port of spec.ports ?? []) {
    const key = portKeyOf(plan.replica, port.containerPort, port.protocol)
    const hostPort = plan.hostPorts[key]
    if (hostPort === undefined) throw new Error(`no host port allocated for ${key}`)
    exposed[`${port.containerPort}/${port.protocol}`] = {}
    bindings[`${port.containerPort}/${port.protocol}`] = [
      { HostIp: hardening.hostIp, HostPort: String(hostPort) },
    ]
  }
  return {
    name: containerNameOf(plan.deploymentId, plan.replica, plan.scope),
    Image: spec.image,
    ...(spec.command ? { Cmd: spec.command } : {}),
    Env: Object.entries(spec.env ?? {}).map(([key, value]) => `${key}=${value}`),
    Labels: labelsOf(plan),
    ExposedPorts: exposed,
    StopSignal: 'SIGTERM',
    StopTimeout: hardening.stopGraceSeconds,
    HostConfig: {
      NetworkMode: plan.network,
      PortBindings: bindings,
      ...(plan.volumes?.length
        ? {
            Mounts: plan.volumes.map((v) => ({
              Type: 'volume' as const,
              Source: v.source,
              Target: v.mountPath,
            })),
          }
        : {}),
      // The lock-down every container gets, since its image and command are a stranger's; a spec
      // can only add back allow-listed capabilities.
      Privileged: false,
      SecurityOpt: ['no-new-privileges'],
      CapDrop: ['ALL'],
      // Only from the spec's allow-listed capAdd (domain/spec.ts), each with a recorded reason.
      ...(spec.capAdd?.length ? { CapAdd: spec.capAdd.map((c) => c.capability) } : {}),
      PidsLimit: hardening.pidsLimit,
      Memory: memoryBytes,
      // Swap equal to memory means no swap at all: the limit is the limit.
      MemorySwap: memoryBytes,
      NanoCpus: Math.round(spec.resources.cpus * 1e9),
      IpcMode: 'private',
      ReadonlyRootfs: readOnly,
      ...(readOnly ? { Tmpfs: { '/tmp': 'rw,nosuid,nodev,noexec,size=64m' } } : {}),
      // The control plane restarts unhealthy or exited workloads on its own ladder; the engine must not.
      RestartPolicy: { Name: 'no' },
      LogConfig: {
        Type: 'json-file',
        Config: { 'max-size': hardening.logMaxSize, 'max-file': String(hardening.logMaxFiles) },
      },
    },
    NetworkingConfig: { EndpointsConfig: { [plan.network]: { Aliases: aliasesOf(plan) } } },
  }
}

/**
 * The names an instance answers to on its owner's network: the deployment's name; a service's
 * instance answers to its service's name (how services reach each other) and to
 * `<service>.<deployment>`, which stays unambiguous when two deployments of one owner have a
 * service of the same name (deployment names are unique per owner and never contain a dot).
 */
export function aliasesOf(plan: Pick<ReplicaPlan, 'spec' | 'service'>): string[] {
  return plan.service ? [plan.service, `${plan.service}.${plan.spec.name}`] : [plan.spec.name]
}

/** The prefix a spec's own labels get on the engine. */
export const USER_LABEL_PREFIX = 'user.'

/**
 * The spec's own labels, under `user.`, plus berth's. Unprefixed, a tenant's label could speak to
 * whatever reads labels on this engine (a reverse proxy's routing rules, a log shipper, berth's
 * own `berth.managed`). A spec label in berth's namespace is configuration for berth (the
 * read-only switch), never copied.
 */
export function labelsOf(plan: ContainerPlan): Record<string, string> {
  return workloadLabelsOf(managedValueOf(plan.scope), plan)
}

/** The labels of one replica's workload (a container, a Swarm service), `managed` saying whose. */
export function workloadLabelsOf(managed: string, replica: ReplicaPlan): Record<string, string> {
  const own = Object.entries(replica.spec.labels ?? {})
    .filter(([key]) => !key.startsWith('berth.'))
    .map(([key, value]) => [`${USER_LABEL_PREFIX}${key}`, value])
  return {
    ...Object.fromEntries(own),
    [LABEL.managed]: managed,
    [LABEL.deployment]: replica.deploymentId,
    [LABEL.owner]: replica.ownerId,
    [LABEL.replica]: String(replica.replica),
    [LABEL.restartGeneration]: String(replica.restartGeneration),
    ...(replica.service ? { [LABEL.service]: replica.service } : {}),
  }
}

/** The engine's container state → the provider's instance state. */
export function instanceStateOf(dockerState: string | undefined): InstanceState {
  switch (dockerState) {
    case 'running':
    case 'restarting':
      return 'running'
    case 'created':
      return 'created'
    case 'paused':
      return 'stopped'
    default:
      // exited, dead, removing: the engine cannot tell a stop from a crash; the exit code can.
      return 'exited'
  }
}

/** `http://host:port` for tcp, `udp://host:port` for udp. */
export function endpointUrlOf(publicHost: string, hostPort: number, protocol: 'tcp' | 'udp'): string {
  const host = publicHost.includes(':') && !publicHost.startsWith('[') ? `[${publicHost}]` : publicHost
  return `${protocol === 'tcp' ? 'http' : 'udp'}://${host}:${hostPort}`
}

/** Host ports a container was created with, keyed like `portKeyOf`, from its inspect data. */
export function hostPortsOf(
  replica: number,
  portBindings: Record<string, Array<{ HostPort?: string }> | null> | undefined,
): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [exposed, binds] of Object.entries(portBindings ?? {})) {
    const [port, protocol] = exposed.split('/')
    const hostPort = Number(binds?.[0]?.HostPort)
    if (!Number.isInteger(hostPort) || hostPort <= 0) continue
    out[portKeyOf(replica, Number(port), protocol === 'udp' ? 'udp' : 'tcp')] = hostPort
  }
  return out
}
