import { randomUUID } from 'node:crypto'
import Docker from 'dockerode'
import { buildTestImage, ensureDockerEngine } from '../../scripts/docker.ts'
import { ensureSwarm, pushTestImage, startRegistry, untagTestImage } from '../../scripts/swarm.ts'
import { osFreePort } from '../../src/providers/docker/ports.ts'
import type { Provider } from '../../src/providers/provider.ts'
import { SWARM_FILTER } from '../../src/providers/swarm/labels.ts'
import { createSwarmProvider, type SwarmProviderOptions } from '../../src/providers/swarm/swarm-provider.ts'
import { labelEveryApply } from '../helpers/run-label.ts'
import { waitFor } from '../helpers/wait.ts'

// The one-node swarm the swarm tests share: the test runner makes the local engine a swarm
// manager and pushes the test image to a registry on loopback (BERTH_TEST_SWARM_IMAGE); run on
// their own, the tests do both here and undo them at the end. Everything a test creates carries
// the spec label `berth-test.run=<run>` and is removed by it.

export const RUN_LABEL = 'berth-test.run'
/**
 * What test deployments ask for. Swarm reserves what a task asks (so it never overcommits): at
 * the spec's default half a CPU, a one-node swarm on two cores would hold four of them.
 */
export const SMALL = { cpus: 0.01, memoryMb: 16 }
export const run = randomUUID()

export interface SwarmWorld {
  docker: Docker
  socketPath: string
  /** The test image, in the loopback registry. */
  image: string
  /** `127.0.0.1:<port>`, for images that do not exist there. */
  registryHost: string
  /** The manager's node id. */
  nodeId: string
}

let ready: Promise<{ world: SwarmWorld; undo: Array<() => Promise<void>> }> | undefined

export function swarmWorld(): Promise<SwarmWorld> {
  ready ??= (async () => {
    const undo: Array<() => Promise<void>> = []
    const engine = await ensureDockerEngine()
    undo.push(() => engine.stop())
    await buildTestImage(engine.socketPath)
    const swarm = await ensureSwarm(engine.socketPath)
    undo.unshift(() => swarm.leave())
    let image = process.env.BERTH_TEST_SWARM_IMAGE
    if (!image) {
      const registry = await startRegistry()
      undo.unshift(() => registry.stop())
      const pushed = await pushTestImage(registry.host, engine.socketPath)
      undo.unshift(() => untagTestImage(pushed, engine.socketPath))
      image = pushed
    }
    const docker = new Docker({ socketPath: engine.socketPath, host: undefined })
    const info = (await docker.info()) as { Swarm: { NodeID: string } }
    const registryHost = image.slice(0, image.indexOf('/'))
    return {
      world: { docker, socketPath: engine.socketPath, image, registryHost, nodeId: info.Swarm.NodeID },
      undo,
    }
  })()
  return ready.then((r) => r.world)
}

/** Removes what this run created, then undoes what the setup did. */
export async function tearDownSwarmWorld(): Promise<void> {
  if (!ready) return
  const { world, undo } = await ready
  const { docker } = world
  const mine = [SWARM_FILTER, `user.${RUN_LABEL}=${run}`]
  const services = await docker.listServices({ filters: { label: mine } })
  for (const service of services)
    await docker
      .getService(service.ID!)
      .remove()
      .catch(() => {})
  // Their tasks end after the stop grace; networks and volumes they use cannot go before.
  const ids = services.map((s) => s.ID!)
  await waitFor(
    "the removed services' tasks to end",
    async () =>
      ids.length === 0 ||
      // Once the services are gone the managers answer 404 for their tasks.
      (await docker.listTasks({ filters: { service: ids } }).then(
        (tasks) => tasks.length === 0,
        (error: { statusCode?: number }) => error.statusCode === 404,
      )),
    60_000,
    200,
  ).catch(() => {})
  // Secrets, volumes and networks are labelled by deployment, not by run: take every berth one
  // no service uses any more.
  const left = await docker.listServices({ filters: { label: [SWARM_FILTER] } })
  const usedDeployments = new Set(left.map((s) => s.Spec?.Labels?.['berth.deployment']))
  const usedOwners = new Set(left.map((s) => s.Spec?.Labels?.['berth.owner']))
  for (const secret of (await docker.listSecrets({ filters: { label: [SWARM_FILTER] } })) as Array<{
    ID: string
    Spec: { Labels: Record<string, string> }
  }>) {
    if (!usedDeployments.has(secret.Spec.Labels['berth.deployment'])) {
      await docker
        .getSecret(secret.ID)
        .remove()
        .catch(() => {})
    }
  }
  for (const config of (await docker.listConfigs({ filters: { label: [SWARM_FILTER] } })) as Array<{
    ID: string
    Spec: { Labels: Record<string, string> }
  }>) {
    if (!usedDeployments.has(config.Spec.Labels['berth.deployment'])) {
      await docker
        .getConfig(config.ID)
        .remove()
        .catch(() => {})
    }
  }
  for (const network of await docker.listNetworks({ filters: { label: [SWARM_FILTER] } })) {
    if (!usedOwners.has(network.Labels?.['berth.owner']))
      await docker
        .getNetwork(network.Id)
        .remove()
        .catch(() => {})
  }
  for (const volume of (await docker.listVolumes({ filters: { label: [SWARM_FILTER] } })).Volumes ?? []) {
    if (!usedDeployments.has(volume.Labels?.['berth.deployment'])) {
      await docker
        .getVolume(volume.Name)
        .remove()
        .catch(() => {})
    }
  }
  for (const step of undo) await step()
}

/** A swarm provider whose every deployment carries this run's label. */
export async function newSwarmProvider(options: Partial<SwarmProviderOptions> = {}): Promise<Provider> {
  const world = await swarmWorld()
  const provider = createSwarmProvider({
    engine: { host: `unix://${world.socketPath}` },
    stopGraceSeconds: 2,
    allocatePort: osFreePort('127.0.0.1'),
    pollMs: 100,
    startTimeoutSeconds: 60,
    ...options,
  })
  return labelEveryApply(provider, RUN_LABEL, run)
}
