import { BerthError } from '../domain/errors.ts'
import type { ProgressStage } from '../domain/lifecycle.ts'
import type { ResourceDemand } from '../domain/resources.ts'
import type { DeploymentSpec, SingleImageSpec } from '../domain/spec.ts'

// The port every compute backend implements (docker today; swarm, the fleet and others later). Every operation is keyed by the
// deployment id and is idempotent, so a step repeated after a crash never duplicates anything.

export interface ProviderCapabilities {
  gpu: boolean
  volumes: boolean
  replicas: boolean
  /** Runs multi-service specs (`services`); a provider without it is never given one. */
  services: boolean
}

export interface DeploymentTarget {
  id: string
  ownerId: string
  spec: DeploymentSpec
  /** Instances started before this generation are restarted by `apply`. */
  restartGeneration: number
  /** Volumes belong to a generation (0 when absent); a new one starts with empty volumes. */
  volumeGeneration?: number
  /** The owner's own credentials for its private registries, opened, to pull its images with. */
  registryCredentials?: RegistryCredential[]
}

export interface RegistryCredential {
  /** A registry host (`registry.example:5000`, `docker.io`). */
  registry: string
  username: string
  password: string
}

export type InstanceState = 'created' | 'running' | 'exited' | 'stopped'

export interface ObservedInstance {
  instanceId: string
  deploymentId: string
  ownerId: string
  /** Its number across the deployment: a multi-service deployment numbers services' replicas on. */
  replica: number
  /** The service it runs, on a multi-service deployment. */
  service?: string
  /** The restart generation the instance was created for, where the provider keeps it. */
  restartGeneration?: number
  state: InstanceState
  /** What the provider itself knows of health; `unknown` means the control plane must probe. */
  health: 'healthy' | 'unhealthy' | 'unknown'
  exitCode?: number
  /** The instance exited because the kernel's OOM killer ended it (its memory limit). */
  oomKilled?: boolean
  startedAt?: Date
  /** Where the control plane reaches each published port of this instance (for its probes). */
  addresses?: Array<{ containerPort: number; protocol: 'tcp' | 'udp'; host: string; port: number }>
}

export interface Observed {
  deploymentId: string
  instances: ObservedInstance[]
  /** `service` names the service an endpoint belongs to, on a multi-service deployment. */
  endpoints: Array<{ containerPort: number; protocol: 'tcp' | 'udp'; url: string; service?: string }>
}

/** A placement's outcome: where the replicas went, or the constraint that no node passed. */
export type PlacementVerdict = { placed: true; message: string } | { placed: false; message: string }

export interface ApplyContext {
  /** Reports a progress stage; the reconciler records it as an event. */
  progress(stage: ProgressStage, message?: string): Promise<void>
  signal: AbortSignal
  /**
   * Whether the deployment's instances of `service` are ready now (healthy by the service's check,
   * or running when it has none); rejects when they never will be (one exited, or the deadline
   * passed). Asked between the start groups of a multi-service deployment (`dependsOn`): not ready,
   * the apply throws WaitingForServiceError and is made again shortly. Absent: always ready.
   */
  ready?(service: string): Promise<boolean>
}

export interface LogOptions {
  tail: number
  follow: boolean
  signal: AbortSignal
  /** Only this service's instances (a multi-service deployment); absent: every instance. */
  service?: string
}

export interface LogLine {
  at: Date
  stream: 'stdout' | 'stderr'
  text: string
}

export interface Usage {
  cpuPercent: number
  memoryBytes: number
  networkRxBytes: number
  networkTxBytes: number
}

/** A deployment's usage, and each service's on a multi-service deployment. */
export type DeploymentUsage = Usage & { services?: Record<string, Usage> }

/** Told by a provider's watch when its instances change, so the reconciler can look at once. */
export interface ProviderWatcher {
  /** Something happened to a deployment's instances (e.g. one exited): look at it now. */
  changed(deploymentId: string, reason: string): void
  /** The watch reconnected after a gap in which changes may have been missed: look at everything. */
  resynced(): void
  /** The watch lost its connection; it retries by itself. */
  disconnected?(error: unknown): void
}

/** Who asks to run an image: the owner's wallet, and whether the spec is an operator's template. */
export interface ImageRequester {
  ownerAddress: string | null
  fromTemplate: boolean
}

export interface Provider {
  readonly name: string
  readonly capabilities: ProviderCapabilities
  /** Whether the backend answers right now (for /health). */
  ping(): Promise<boolean>
  /**
   * Refuses (403, naming why) an image this requester may not run here, before anything is
   * created or pulled. Absent: every image may run.
   */
  checkImage?(image: string, requester: ImageRequester): Promise<void>
  /**
   * How much the provider can run at once (overcommit included), for admitting starts; absent or
   * null: it does not know, and every start is admitted.
   */
  capacity?(): Promise<ResourceDemand | null>
  /**
   * For a provider that chooses nodes: places the deployment's replicas before a start is
   * admitted (reserving their room), or says why nothing fits. Absent: `capacity` decides.
   */
  place?(target: DeploymentTarget): Promise<PlacementVerdict>
  /** Creates what is missing and converges what exists; returns what is there afterwards. */
  apply(target: DeploymentTarget, ctx: ApplyContext): Promise<Observed>
  observe(deploymentId: string): Promise<Observed | null>
  stop(deploymentId: string): Promise<void>
  /** Removes the instances and everything, volumes included (a delete). */
  remove(deploymentId: string): Promise<void>
  /**
   * Removes the instances and frees what they held (host ports), keeping volumes: what a failed
   * deployment is rolled back to. A later start creates the instances again on the same volumes.
   */
  release(deploymentId: string): Promise<void>
  restart(deploymentId: string): Promise<void>
  /**
   * Opens the deployment's log: resolves once the backend has answered (so an outage is an error
   * the caller can still answer with a status), with the lines to iterate until `signal` aborts.
   */
  logs(deploymentId: string, options: LogOptions): Promise<AsyncIterable<LogLine>>
  stats(deploymentId: string): Promise<DeploymentUsage>
  /**
   * Optional: runs a command (an argument vector, never a shell string) in each running replica,
   * for what must change inside a running service (a template's credential rotation). Absent:
   * the provider cannot, and such changes are refused.
   */
  exec?(
    deploymentId: string,
    command: string[],
  ): Promise<Array<{ replica: number; exitCode: number; output: string }>>
  /** Everything this provider runs for berth, for adoption and orphan sweeps. */
  list(): Promise<ObservedInstance[]>
  /**
   * Optional, for the orphan sweep: removes what the provider keeps beside instances (docker: the
   * owners' networks) once nothing of berth uses it. Returns how many it removed.
   */
  sweepUnused?(): Promise<number>
  /**
   * Optional: follows the backend's changes until `signal` aborts (reconnecting by itself). Only
   * makes the reconciler look sooner; polling stays the mechanism that guarantees convergence.
   */
  watch?(watcher: ProviderWatcher, signal: AbortSignal): Promise<void>
}

/**
 * Errors a provider raises on purpose. `permanent` fails the deployment (a bad image, an injected
 * failure); `transient` and `unavailable` are retried with backoff and never mark it failed. Met
 * during a request, `permanent` answers 422 `provider_rejected` and the others 503
 * `provider_unavailable`: try again later.
 */
export class ProviderError extends BerthError {
  constructor(
    readonly kind: 'permanent' | 'transient' | 'unavailable',
    message: string,
    options: { cause?: unknown; eventType?: string } = {},
  ) {
    super(kind === 'permanent' ? 'provider_rejected' : 'provider_unavailable', message, {
      cause: options.cause,
    })
    this.name = 'ProviderError'
    this.eventType = options.eventType
  }
  readonly eventType: string | undefined
}

/**
 * An apply that started what it could and stops before services whose dependencies are not
 * ready yet: not a failure; the reconciler makes the apply again shortly.
 */
export class WaitingForServiceError extends BerthError {
  constructor(readonly service: string) {
    super('provider_unavailable', `waiting for service ${service} to be healthy`)
    this.name = 'WaitingForServiceError'
  }
}

export class ProviderRegistry {
  readonly #providers = new Map<string, Provider>()
  constructor(readonly defaultName: string) {}

  add(provider: Provider): void {
    this.#providers.set(provider.name, provider)
  }

  get(name: string): Provider | undefined {
    return this.#providers.get(name)
  }

  names(): string[] {
    return [...this.#providers.keys()]
  }

  all(): Provider[] {
    return [...this.#providers.values()]
  }
}

/** A target whose spec runs one image. */
export type SingleImageTarget = DeploymentTarget & { spec: SingleImageSpec }

/**
 * The target of a provider that runs single images only. Such a provider is never given services
 * (creation refuses them); a stored spec that reaches it anyway fails instead of running half.
 */
export function singleImageTarget(target: DeploymentTarget, provider: string): SingleImageTarget {
  if (target.spec.services) {
    throw new ProviderError('permanent', `the ${provider} provider runs single-image deployments only`, {
      eventType: 'services_unsupported',
    })
  }
  return target as SingleImageTarget
}
