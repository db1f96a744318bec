import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { buildTestImage, type DockerEngine, ensureDockerEngine } from '../../scripts/docker.ts'
import { deploymentSpecSchema } from '../../src/domain/spec.ts'
import { osFreePort } from '../../src/providers/docker/ports.ts'
import type { ApplyContext, DeploymentTarget, Observed, Provider } from '../../src/providers/provider.ts'
import { serviceNameOf } from '../../src/providers/swarm/labels.ts'
import { createSwarmProvider } from '../../src/providers/swarm/swarm-provider.ts'
import { type SwarmCluster, startSwarmCluster } from '../helpers/swarm-cluster.ts'
import { waitFor } from '../helpers/wait.ts'

// A swarm of three engines (a manager and two workers, each in a network namespace of its own,
// see swarm-cluster.ts), with the test image in a registry on their bridge: replicas spread over
// the nodes and answer at the node the endpoint names; a worker's engine killed, its replicas
// end up running on the nodes that are left. Minutes, not seconds: `npm run test:long`.

const context = (): ApplyContext => ({ signal: new AbortController().signal, progress: async () => {} })

describe('swarm provider on three engines (manager + two workers)', { timeout: 600_000 }, () => {
  let cluster: SwarmCluster
  let provider: Provider
  let engine: DockerEngine | undefined
  const created: string[] = []
  before(async () => {
    engine = await ensureDockerEngine()
    await buildTestImage(engine.socketPath)
    cluster = await startSwarmCluster(3, engine.socketPath)
    provider = createSwarmProvider({
      engine: { host: `unix://${cluster.manager.socketPath}` },
      stopGraceSeconds: 2,
      allocatePort: osFreePort('127.0.0.1'),
      pollMs: 200,
      startTimeoutSeconds: 120,
    })
  })
  after(async () => {
    for (const id of created) await provider?.remove(id).catch(() => {})
    await cluster?.destroy()
    // Stops the engine only if this file had to start it (none answered).
    await engine?.stop()
  })

  const target = (replicas: number): DeploymentTarget => {
    const id = randomUUID()
    created.push(id)
    return {
      id,
      ownerId: randomUUID(),
      restartGeneration: 0,
      spec: deploymentSpecSchema.parse({
        name: 'web',
        image: cluster.image,
        replicas,
        resources: { cpus: 0.01, memoryMb: 16 },
        ports: [{ containerPort: 80 }],
      }),
    }
  }

  /** The node each replica's running task is on. */
  async function nodesOf(deploymentId: string, replicas: number): Promise<string[]> {
    const out: string[] = []
    for (let replica = 0; replica < replicas; replica++) {
      const tasks = (await cluster.manager.docker.listTasks({
        filters: { service: [serviceNameOf(deploymentId, replica)], 'desired-state': ['running'] },
      })) as Array<{ NodeID: string; Status: { State: string } }>
      out.push(tasks.find((t) => t.Status.State === 'running')?.NodeID ?? '')
    }
    return out
  }

  it('spreads replicas over the nodes, each answering at the node its endpoint names', async () => {
    const t = target(3)
    const observed = await provider.apply(t, context())
    const nodes = await nodesOf(t.id, 3)
    assert.ok(new Set(nodes).size >= 2, `replicas on several nodes: ${nodes.join(', ')}`)
    const addresses = new Set(observed.endpoints.map((e) => new URL(e.url).hostname))
    assert.ok(addresses.size >= 2, 'endpoints name the nodes that run the replicas')
    for (const endpoint of observed.endpoints) {
      await waitFor(`${endpoint.url} to answer`, async () => (await fetch(endpoint.url)).status === 200)
    }
  })

  it("moves a dead worker's replicas to the nodes that are left", async () => {
    const t = target(3)
    await provider.apply(t, context())
    const worker = cluster.workers[0]!
    const before = await nodesOf(t.id, 3)
    assert.ok(before.includes(worker.nodeId), 'the worker runs a replica before it dies')
    worker.kill()
    await waitFor(
      'the manager to see the worker down',
      async () => {
        const node = (await cluster.manager.docker.getNode(worker.nodeId).inspect()) as {
          Status: { State: string }
        }
        return node.Status.State === 'down'
      },
      120_000,
      500,
    )
    // What the reconciler does: observe; a replica that is missing (its node went down) is applied again.
    const settled = await waitFor(
      'every replica running on a live node',
      async () => {
        const observed: Observed | null = await provider.observe(t.id)
        const running = observed?.instances.filter((i) => i.state === 'running') ?? []
        if (running.length < 3) {
          await provider.apply(t, context())
          return null
        }
        return observed
      },
      180_000,
      1000,
    )
    const after = await nodesOf(t.id, 3)
    assert.ok(!after.includes(worker.nodeId), `no replica left on the dead worker: ${after.join(', ')}`)
    assert.equal(settled.instances.length, 3)
  })
})
