import type Docker from 'dockerode'
import type { Observed, ObservedInstance } from '../provider.ts'
import { endpointUrlOf, hostPortsOf, instanceStateOf } from './container-spec.ts'
import { isNotFound } from './errors.ts'
import { type EngineScope, identityOf, LABEL, managedFilterOf } from './labels.ts'

// Reading what is there: containers are found by label only, so anything berth did not create
// (no `berth.managed=true`) is invisible to observe, list and every operation built on them.

/** Every container of a deployment, inspected, ordered by replica. */
export async function inspectDeployment(
  docker: Docker,
  deploymentId: string,
  scope?: EngineScope,
): Promise<Docker.ContainerInspectInfo[]> {
  const summaries = await docker.listContainers({
    all: true,
    filters: { label: [managedFilterOf(scope), `${LABEL.deployment}=${deploymentId}`] },
  })
  return inspectContainers(
    docker,
    summaries.map((s) => s.Id),
    scope,
  )
}

/** These containers, inspected, ordered by replica; one removed meanwhile is simply not there. */
export async function inspectContainers(
  docker: Docker,
  ids: string[],
  scope?: EngineScope,
): Promise<Docker.ContainerInspectInfo[]> {
  const infos: Docker.ContainerInspectInfo[] = []
  for (const id of ids) {
    try {
      infos.push(await docker.getContainer(id).inspect())
    } catch (error) {
      if (!isNotFound(error)) throw error
    }
  }
  return infos.sort((a, b) => replicaOf(a, scope) - replicaOf(b, scope))
}

export function replicaOf(info: Docker.ContainerInspectInfo, scope?: EngineScope): number {
  return identityOf(info.Config.Labels, scope)?.replica ?? Number.MAX_SAFE_INTEGER
}

const NEVER = '0001-01-01T00:00:00Z'

export function instanceOf(info: Docker.ContainerInspectInfo, scope?: EngineScope): ObservedInstance | null {
  const identity = identityOf(info.Config.Labels, scope)
  if (!identity) return null
  const state = instanceStateOf(info.State.Status)
  return {
    instanceId: info.Id,
    deploymentId: identity.deploymentId,
    ownerId: identity.ownerId,
    replica: identity.replica,
    ...(identity.service ? { service: identity.service } : {}),
    restartGeneration: identity.restartGeneration,
    state,
    // The engine has no probe of ours; the control plane runs the spec's checks.
    health: 'unknown',
    ...(state === 'exited'
      ? { exitCode: info.State.ExitCode, oomKilled: info.State.OOMKilled === true }
      : {}),
    ...(info.State.StartedAt && !info.State.StartedAt.startsWith(NEVER.slice(0, 10))
      ? { startedAt: new Date(info.State.StartedAt) }
      : {}),
  }
}

/** A listed (not inspected) container; enough for adoption and orphan sweeps. */
export function summaryInstanceOf(
  summary: Docker.ContainerInfo,
  scope?: EngineScope,
): ObservedInstance | null {
  const identity = identityOf(summary.Labels, scope)
  if (!identity) return null
  return {
    instanceId: summary.Id,
    deploymentId: identity.deploymentId,
    ownerId: identity.ownerId,
    replica: identity.replica,
    ...(identity.service ? { service: identity.service } : {}),
    state: instanceStateOf(summary.State),
    health: 'unknown',
  }
}

/**
 * What a deployment looks like, or null when nothing of it exists. Endpoints come from each
 * container's configured port bindings (stable while it is stopped), one per replica and port,
 * in replica order.
 */
export function observedOf(
  deploymentId: string,
  infos: Docker.ContainerInspectInfo[],
  publicHost: string,
  scope?: EngineScope,
): Observed | null {
  const instances: ObservedInstance[] = []
  const endpoints: Observed['endpoints'] = []
  for (const info of infos) {
    const instance = instanceOf(info, scope)
    if (!instance) continue
    const ports = hostPortsOf(
      instance.replica,
      info.HostConfig.PortBindings as Parameters<typeof hostPortsOf>[1],
    )
    const addresses: NonNullable<ObservedInstance['addresses']> = []
    instances.push({ ...instance, addresses })
    for (const [key, hostPort] of Object.entries(ports)) {
      const [, containerPort, protocol] = key.split('/')
      const proto = protocol === 'udp' ? 'udp' : 'tcp'
      // The control plane probes the published address, the same one users are given.
      addresses.push({
        containerPort: Number(containerPort),
        protocol: proto,
        host: publicHost,
        port: hostPort,
      })
      endpoints.push({
        containerPort: Number(containerPort),
        protocol: proto,
        url: endpointUrlOf(publicHost, hostPort, proto),
        ...(instance.service ? { service: instance.service } : {}),
      })
    }
  }
  return instances.length === 0 ? null : { deploymentId, instances, endpoints }
}
