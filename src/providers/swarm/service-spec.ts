import { type ReplicaPlan, wantsReadOnlyRootfs, workloadLabelsOf } from '../docker/container-spec.ts'
import { portKeyOf } from '../docker/labels.ts'
import type { VolumeSpec } from '../docker/volumes.ts'
import { LABEL, SWARM_MANAGED, serviceNameOf } from './labels.ts'

// Pure: one replica of a deployment → the Swarm service that runs it. All the hardening lives
// here, in one place a test can read without a swarm.
//
// One service per replica, each with one task: a replica keeps its own host ports, its own
// volumes (pinned to its node with the local driver) and its own restart generation, exactly as
// with the docker provider, and apply stays keyed by name (`berth-<deployment>-<replica>`).
//
// Restarts: the restart policy is `none`, so Swarm never restarts a task on its own and berth's
// restart ladder (with its backoff and budget) decides every restart. berth restarts a replica by
// forcing an update of its service (a new task), and starts a stopped one by scaling it back to 1.

export type PublishMode = 'host' | 'ingress'

export interface SwarmHardening {
  pidsLimit: number
  readOnlyRootfs: boolean
  stopGraceSeconds: number
  publishMode: PublishMode
  logMaxSize: string
  logMaxFiles: number
}

export interface ServicePlan extends ReplicaPlan {
  /** The owner's overlay network id. */
  network: string
  /** Published port per `portKeyOf(replica, containerPort, protocol)`. */
  publishedPorts: Record<string, number>
  /** Each secret env variable's Swarm secret. */
  secrets: Array<{ envName: string; secretId: string; secretName: string }>
  volumes: Array<VolumeSpec & { source: string }>
  /** The volume driver; `local` pins the replica to `pinnedNode`. */
  volumeDriver: string
  /** The node a replica with local volumes is kept on (its data is there). */
  pinnedNode?: string
  /** The operator's constraints, which every task gets. */
  constraints: string[]
  /** The value of the spec's `placement.spread` label this replica goes to. */
  spreadValue?: string
  /** Bumped to make Swarm replace the task (a restart). */
  forceUpdate: number
  /** 0 while stopped. */
  replicas: 0 | 1
}

/** What each replica's task reserves (and is limited to) on its node. */
export const reservationOf = (spec: ServicePlan['spec']) => ({
  nanoCpus: Math.round(spec.resources.cpus * 1e9),
  memoryBytes: spec.resources.memoryMb * 1024 * 1024,
})

/** The Swarm constraints a replica's task gets: the operator's, the spec's, its spread value and pin. */
export function placementConstraintsOf(
  plan: Pick<ServicePlan, 'spec' | 'constraints' | 'spreadValue' | 'pinnedNode'>,
): string[] {
  const constraints = [
    ...plan.constraints,
    ...Object.entries(plan.spec.placement?.nodeLabels ?? {}).map(
      ([key, value]) => `node.labels.${key}==${value}`,
    ),
  ]
  // Swarm spreads the tasks of one service; each replica is a service of its own, so berth deals
  // the replicas out over the label's values itself (place.ts) and pins each to its value.
  const spread = plan.spec.placement?.spread
  if (spread && plan.spreadValue !== undefined) constraints.push(`node.labels.${spread}==${plan.spreadValue}`)
  if (plan.pinnedNode) constraints.push(`node.id==${plan.pinnedNode}`)
  return constraints
}

/** Where a secret env variable's file is mounted; the variable `NAME_FILE` points at it. */
export const secretPathOf = (envName: string) => `/run/secrets/${envName}`

export function serviceSpecOf(plan: ServicePlan, hardening: SwarmHardening) {
  const { spec } = plan
  const { nanoCpus, memoryBytes } = reservationOf(spec)
  const readOnly = wantsReadOnlyRootfs(spec, hardening.readOnlyRootfs)
  const secretNames = new Set(plan.secrets.map((s) => s.envName))
  const env = Object.entries(spec.env ?? {})
    .filter(([key]) => !secretNames.has(key))
    .map(([key, value]) => `${key}=${value}`)
  for (const secret of plan.secrets) env.push(`${secret.envName}_FILE=${secretPathOf(secret.envName)}`)
  const labels = workloadLabelsOf(SWARM_MANAGED, plan)

  const mounts = [
    ...plan.volumes.map((v) => ({
      Type: 'volume' as const,
      Source: v.source,
      Target: v.mountPath,
      VolumeOptions: {
        Labels: {
          [LABEL.managed]: SWARM_MANAGED,
          [LABEL.deployment]: plan.deploymentId,
          [LABEL.owner]: plan.ownerId,
        },
        DriverConfig: { Name: plan.volumeDriver },
      },
    })),
    ...(readOnly
      ? [
          {
            Type: 'tmpfs' as const,
            Target: '/tmp',
            TmpfsOptions: { SizeBytes: 64 * 1024 * 1024, Mode: 0o1777 },
          },
        ]
      : []),
  ]

  const constraints = placementConstraintsOf(plan)

  return {
    Name: serviceNameOf(plan.deploymentId, plan.replica),
    Labels: labels,
    TaskTemplate: {
      ContainerSpec: {
        Image: spec.image,
        // `Args` replaces the image's CMD and keeps its ENTRYPOINT, as `Cmd` does for a container.
        ...(spec.command ? { Args: spec.command } : {}),
        Env: env,
        Labels: labels,
        // The lock-down every task gets, since its image and command are a stranger's.
        // NoNewPrivileges is honoured from engine API 1.46; older managers drop it (README).
        Privileges: { NoNewPrivileges: true },
        CapabilityDrop: ['ALL'],
        ...(spec.capAdd?.length ? { CapabilityAdd: spec.capAdd.map((c) => c.capability) } : {}),
        ReadOnly: readOnly,
        Mounts: mounts,
        StopSignal: 'SIGTERM',
        StopGracePeriod: hardening.stopGraceSeconds * 1e9,
        Secrets: plan.secrets.map((s) => ({
          SecretID: s.secretId,
          SecretName: s.secretName,
          // Readable by any user: many images run as one that is not root.
          File: { Name: s.envName, UID: '0', GID: '0', Mode: 0o444 },
        })),
        Init: false,
      },
      // Limits and reservations alike: Swarm's scheduler places a task only where its reservation
      // fits, so the cluster is never overcommitted.
      Resources: {
        Limits: { NanoCPUs: nanoCpus, MemoryBytes: memoryBytes, Pids: hardening.pidsLimit },
        Reservations: { NanoCPUs: nanoCpus, MemoryBytes: memoryBytes },
      },
      RestartPolicy: { Condition: 'none' as const, MaxAttempts: 0 },
      Placement: { Constraints: constraints },
      Networks: [{ Target: plan.network, Aliases: [spec.name] }],
      LogDriver: {
        Name: 'json-file',
        Options: { 'max-size': hardening.logMaxSize, 'max-file': String(hardening.logMaxFiles) },
      },
      ForceUpdate: plan.forceUpdate,
    },
    Mode: { Replicated: { Replicas: plan.replicas } },
    // One task per service: the old one stops before its replacement starts (its host ports and
    // volumes are free again), and a failed update is berth's to judge, never rolled back.
    UpdateConfig: { Parallelism: 1, Order: 'stop-first', FailureAction: 'continue' },
    EndpointSpec: {
      // DNS round robin: a spec name resolves to the replicas' own addresses, with no virtual IP
      // (whose load balancing needs the kernel's IPVS on every node). The routing mesh needs a
      // virtual IP, so `ingress` keeps one.
      Mode: hardening.publishMode === 'ingress' ? ('vip' as const) : ('dnsrr' as const),
      Ports: (spec.ports ?? []).map((port) => {
        const key = portKeyOf(plan.replica, port.containerPort, port.protocol)
        const published = plan.publishedPorts[key]
        if (published === undefined) throw new Error(`no published port allocated for ${key}`)
        return {
          Protocol: port.protocol,
          TargetPort: port.containerPort,
          PublishedPort: published,
          PublishMode: hardening.publishMode,
        }
      }),
    },
  }
}

export type ServiceSpec = ReturnType<typeof serviceSpecOf>
