import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { before, describe, it } from 'node:test'
import type Docker from 'dockerode'
import { type SingleImageSpecInput, singleImageSpecSchema } from '../../src/domain/spec.ts'
import type { ApplyContext, DeploymentTarget, Provider } from '../../src/providers/provider.ts'
import { LABEL, overlayNameOf, serviceNameOf } from '../../src/providers/swarm/labels.ts'
import { exec } from '../docker/exec.ts'
import { singleImage } from '../helpers/single-image.ts'
import { waitFor } from '../helpers/wait.ts'
import { newSwarmProvider, SMALL, type SwarmWorld, swarmWorld } from './setup.ts'

// What a service looks like on the swarm: the lock-down, limits and reservations, its owner's
// overlay network, secrets as files, ports that answer.

export const context = (): ApplyContext => ({
  signal: new AbortController().signal,
  progress: async () => {},
})

export function swarmTarget(
  world: SwarmWorld,
  spec: Partial<SingleImageSpecInput> = {},
  ownerId: string = randomUUID(),
): DeploymentTarget {
  return {
    id: randomUUID(),
    ownerId,
    restartGeneration: 0,
    spec: singleImageSpecSchema.parse({ name: 'web', image: world.image, resources: SMALL, ...spec }),
  }
}

/** The running container of a replica's task (on this one-node swarm, on this engine). */
export async function taskContainer(
  docker: Docker,
  deploymentId: string,
  replica = 0,
): Promise<Docker.Container> {
  const tasks = (await docker.listTasks({
    filters: { service: [serviceNameOf(deploymentId, replica)], 'desired-state': ['running'] },
  })) as Array<{ Status: { State: string; ContainerStatus?: { ContainerID?: string } } }>
  const id = tasks.find((t) => t.Status.State === 'running')?.Status.ContainerStatus?.ContainerID
  assert.ok(id, `replica ${replica} of ${deploymentId} has a running task`)
  return docker.getContainer(id)
}

export function swarmHardeningTests(): void {
  describe('swarm provider: services', () => {
    let world: SwarmWorld
    let provider: Provider
    before(async () => {
      world = await swarmWorld()
      provider = await newSwarmProvider({ pidsLimit: 64 })
    })

    it('locks every task down, with limits and equal reservations, and no restarts of its own', async () => {
      const t = swarmTarget(world, { resources: { cpus: 0.25, memoryMb: 64 }, labels: { team: 'a' } })
      await provider.apply(t, context())
      const service = await world.docker.getService(serviceNameOf(t.id, 0)).inspect()
      const template = service.Spec.TaskTemplate
      assert.deepEqual(template.RestartPolicy.Condition, 'none')
      assert.deepEqual(template.Resources.Limits, {
        NanoCPUs: 250_000_000,
        MemoryBytes: 64 * 2 ** 20,
        Pids: 64,
      })
      assert.deepEqual(template.Resources.Reservations, { NanoCPUs: 250_000_000, MemoryBytes: 64 * 2 ** 20 })
      assert.equal(service.Spec.Labels[LABEL.managed], 'swarm')
      assert.equal(service.Spec.Labels['user.team'], 'a')
      assert.equal(service.Spec.Labels.team, undefined, 'spec labels only under user.')

      const info = await (await taskContainer(world.docker, t.id)).inspect()
      const host = info.HostConfig
      assert.deepEqual(host.CapDrop, ['ALL'])
      assert.equal(host.PidsLimit, 64)
      assert.equal(host.Memory, 64 * 2 ** 20)
      assert.equal(host.NanoCpus, 250_000_000)
      assert.equal(host.Privileged, false)
      assert.equal(host.ReadonlyRootfs, false)
      assert.equal(host.IpcMode, 'private')
      assert.deepEqual(host.Binds ?? [], [])
      // Swarm's own restart policy lives in the orchestrator; the container never restarts itself.
      assert.ok(['', 'no'].includes(host.RestartPolicy?.Name ?? ''))
      assert.equal(info.Config.Labels[LABEL.deployment], t.id)
      assert.equal(info.Config.Labels[LABEL.managed], 'swarm')
    })

    it('gives a read-only root filesystem with a writable /tmp when the spec asks', async () => {
      const t = swarmTarget(world, { labels: { 'berth.docker/read-only-rootfs': 'true' } })
      await provider.apply(t, context())
      const container = await taskContainer(world.docker, t.id)
      assert.equal((await container.inspect()).HostConfig.ReadonlyRootfs, true)
      assert.notEqual((await exec(container, ['touch', '/etc/x'])).exitCode, 0)
      assert.equal((await exec(container, ['touch', '/tmp/x'])).exitCode, 0)
    })

    it("puts an owner's deployments on one overlay network, and two owners on two", async () => {
      const owner = randomUUID()
      const api = swarmTarget(world, { name: 'api' }, owner)
      const web = swarmTarget(world, { name: 'web' }, owner)
      const stranger = swarmTarget(world, { name: 'other' })
      for (const t of [api, web, stranger]) await provider.apply(t, context())
      const network = (await world.docker.listNetworks({ filters: { name: [overlayNameOf(owner)] } })).find(
        (n) => n.Name === overlayNameOf(owner),
      )
      assert.ok(network)
      assert.equal(network.Driver, 'overlay')
      assert.equal(network.Attachable, true)
      assert.equal(network.Labels?.[LABEL.owner], owner)
      const webContainer = await taskContainer(world.docker, web.id)
      const networks = Object.keys((await webContainer.inspect()).NetworkSettings.Networks)
      assert.deepEqual(networks, [overlayNameOf(owner)])
      // Same owner: reached by spec name over the overlay. Another owner: neither by name nor
      // by address. (busybox nc has no -z: a whole HTTP request tells an answer.)
      const get = (host: string) =>
        exec(webContainer, ['sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${host} 80 | head -1`])
      await waitFor('api to answer web by name', async () => (await get('api')).output.includes('200 OK'))
      const strangerInfo = await (await taskContainer(world.docker, stranger.id)).inspect()
      const strangerAddress = Object.values(strangerInfo.NetworkSettings.Networks)[0]?.IPAddress
      assert.ok(strangerAddress)
      assert.ok(!(await get('other')).output.includes('200'), 'another owner is not resolved')
      assert.ok(!(await get(strangerAddress)).output.includes('200'), 'nor reached by address')
    })

    it('mounts secret env values as files, never as variables, and removes them with the deployment', async () => {
      const t = swarmTarget(world, {
        env: { API_KEY: 'sk-secret-value', MODE: 'plain' },
        secretEnv: ['API_KEY'],
      })
      await provider.apply(t, context())
      const container = await taskContainer(world.docker, t.id)
      const env = (await container.inspect()).Config.Env
      assert.ok(env.includes('MODE=plain'))
      assert.ok(env.includes('API_KEY_FILE=/run/secrets/API_KEY'))
      assert.ok(!env.some((e) => e.includes('sk-secret-value')), 'the value is not in the environment')
      const read = await exec(container, ['cat', '/run/secrets/API_KEY'])
      assert.equal(read.output, 'sk-secret-value')
      const secretsOf = () =>
        world.docker.listSecrets({ filters: { label: [`${LABEL.deployment}=${t.id}`] } })
      assert.equal((await secretsOf()).length, 1)

      // A new value is a new secret; the old one goes.
      const changed = {
        ...t,
        restartGeneration: 1,
        spec: { ...singleImage(t.spec), env: { ...singleImage(t.spec).env, API_KEY: 'sk-rotated' } },
      }
      await provider.apply(changed, context())
      const again = await exec(await taskContainer(world.docker, t.id), ['cat', '/run/secrets/API_KEY'])
      assert.equal(again.output, 'sk-rotated')
      assert.equal((await secretsOf()).length, 1)

      await provider.remove(t.id)
      assert.equal((await secretsOf()).length, 0)
    })

    it('publishes ports on the node running the task, and the endpoint it reports answers', async () => {
      const t = swarmTarget(world, { ports: [{ containerPort: 80 }], replicas: 2 })
      const observed = await provider.apply(t, context())
      assert.equal(observed.endpoints.length, 2)
      for (const endpoint of observed.endpoints) {
        assert.match(endpoint.url, /^http:\/\/127\.0\.0\.1:\d+$/)
        // Running is not yet listening: the workload's httpd starts a moment after its task.
        const body = await waitFor(`${endpoint.url} to answer`, async () => {
          const answer = await fetch(endpoint.url, { signal: AbortSignal.timeout(5000) })
          return answer.status === 200 ? answer.text() : null
        })
        assert.match(body, /berth/)
      }
      const service = await world.docker.getService(serviceNameOf(t.id, 0)).inspect()
      assert.equal(service.Spec.EndpointSpec?.Ports?.[0]?.PublishMode, 'host')
    })

    it('places by node labels: a replica waits for a node that has them', async () => {
      const label = `berth-test-${randomUUID().slice(0, 8)}`
      const quick = await newSwarmProvider({ startTimeoutSeconds: 5 })
      const zone = `${label}-zone`
      const t = swarmTarget(world, { placement: { nodeLabels: { [label]: 'yes' }, spread: zone } })
      const refused = await quick.place!(t)
      assert.equal(refused.placed, false)
      assert.match(refused.message, new RegExp(`meets replica 0's constraints \\(node.labels.${label}==yes`))
      await assert.rejects(quick.apply(t, context()), (error: Error & { kind?: string }) => {
        assert.equal(error.kind, 'transient')
        assert.match(error.message, /no suitable node|pending/i)
        return true
      })
      const service = await world.docker.getService(serviceNameOf(t.id, 0)).inspect()
      // No node has the spread label: the replica waits for one rather than running unspread.
      assert.deepEqual(service.Spec.TaskTemplate.Placement.Constraints, [
        `node.labels.${label}==yes`,
        `node.labels.${zone}==none`,
      ])
      const node = world.docker.getNode(world.nodeId)
      const before = await node.inspect()
      await node.update({
        _query: { version: before.Version.Index },
        _body: { ...before.Spec, Labels: { ...before.Spec.Labels, [label]: 'yes', [zone]: 'a' } },
      })
      try {
        assert.equal((await provider.place!(t)).placed, true)
        const observed = await provider.apply(t, context())
        assert.equal(observed.instances[0]?.state, 'running')
      } finally {
        const current = await node.inspect()
        const { [label]: _, [zone]: __, ...labels } = current.Spec.Labels ?? {}
        await node.update({
          _query: { version: current.Version.Index },
          _body: { ...current.Spec, Labels: labels },
        })
      }
    })

    it('admits a start only when its replicas fit node by node, after what other tasks reserve', async () => {
      const node = await world.docker.getNode(world.nodeId).inspect()
      const cpus = node.Description.Resources.NanoCPUs / 1e9
      const sized = (share: number) => swarmTarget(world, { resources: { cpus: share, memoryMb: 16 } })
      const tooBig = await provider.place!(sized(cpus + 1))
      assert.equal(tooBig.placed, false)
      assert.match(tooBig.message, new RegExp(`room for replica 0 \\(${cpus + 1} CPUs, 16 MiB\\)`))
      const half = sized(cpus / 2)
      assert.equal((await provider.place!(half)).placed, true)
      await provider.apply(half, context())
      const more = sized(cpus / 2 + 0.25)
      try {
        assert.equal((await provider.place!(more)).placed, false, "half the node is the first one's")
        assert.equal((await provider.place!(half)).placed, true, 'its own tasks make no room for a restart')
      } finally {
        await provider.remove(half.id)
      }
      assert.equal((await provider.place!(more)).placed, true)
    })

    it("encrypts owners' overlay networks when the operator asks", async () => {
      const encrypting = await newSwarmProvider({ encryptNetworks: true })
      const t = swarmTarget(world)
      await encrypting.apply(t, context())
      const network = await world.docker.getNetwork(overlayNameOf(t.ownerId)).inspect()
      assert.equal(network.Options?.encrypted, 'true')
    })

    it('refuses GPUs, which it does not offer', async () => {
      const t = swarmTarget(world, { resources: { ...SMALL, gpus: 1 } })
      await assert.rejects(provider.apply(t, context()), /offers no GPUs/)
    })
  })
}
