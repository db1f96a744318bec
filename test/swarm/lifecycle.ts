import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { before, describe, it } from 'node:test'
import type { Provider, ProviderError } from '../../src/providers/provider.ts'
import { serviceNameOf } from '../../src/providers/swarm/labels.ts'
import { readPin, savePin } from '../../src/providers/swarm/pins.ts'
import { engineRelay } from '../docker/engine-outage.ts'
import { exec } from '../docker/exec.ts'
import { waitFor } from '../helpers/wait.ts'
import { context, swarmTarget, taskContainer } from './hardening.ts'
import { newSwarmProvider, type SwarmWorld, swarmWorld } from './setup.ts'

// A service's life on the swarm: exits left to berth's ladder, images that cannot be pulled,
// volumes that keep their data on their node, adoption by a restarted control plane, and a
// manager that stops answering.

export function swarmLifecycleTests(): void {
  describe('swarm provider: lifecycle', () => {
    let world: SwarmWorld
    let provider: Provider
    before(async () => {
      world = await swarmWorld()
      provider = await newSwarmProvider()
    })

    it('reports a task that exited with its exit code, and runs a new one on restart', async () => {
      const t = swarmTarget(world, { command: ['sh', '-c', 'sleep 1; exit 3'] })
      await provider.apply(t, context())
      const exited = await waitFor('the exit to be observed', async () => {
        const instance = (await provider.observe(t.id))?.instances[0]
        return instance?.state === 'exited' ? instance : null
      })
      assert.equal(exited.exitCode, 3)
      await provider.restart(t.id)
      const restarted = (await provider.observe(t.id))?.instances[0]
      assert.equal(restarted?.instanceId, exited.instanceId, 'the same replica, with a new task')
      assert.ok(restarted?.state === 'running' || restarted?.state === 'exited')
      const tasks = await world.docker.listTasks({ filters: { service: [serviceNameOf(t.id, 0)] } })
      assert.equal(tasks.length, 2, 'one task per run: the failed one and the restart')
    })

    it('fails a deployment whose image cannot be pulled, as image_pull_failed', async () => {
      const t = swarmTarget(world, { image: `${world.registryHost}/berth-test/missing:1` })
      await assert.rejects(provider.apply(t, context()), (error: ProviderError) => {
        assert.equal(error.kind, 'permanent')
        assert.equal(error.eventType, 'image_pull_failed')
        return true
      })
    })

    it('pins a replica with local volumes to its node, keeps its data across restarts, removes it on delete', async () => {
      const t = swarmTarget(world, { volumes: [{ name: 'data', mountPath: '/data' }] })
      await provider.apply(t, context())
      const service = await world.docker.getService(serviceNameOf(t.id, 0)).inspect()
      assert.deepEqual(service.Spec.TaskTemplate.Placement.Constraints, [`node.id==${world.nodeId}`])
      assert.equal(
        (await exec(await taskContainer(world.docker, t.id), ['sh', '-c', 'echo kept > /data/f'])).exitCode,
        0,
      )
      await provider.apply({ ...t, restartGeneration: 1 }, context())
      const read = await exec(await taskContainer(world.docker, t.id), ['cat', '/data/f'])
      assert.equal(read.output, 'kept')
      const volumes = () => world.docker.listVolumes({ filters: { label: [`berth.deployment=${t.id}`] } })
      assert.equal((await volumes()).Volumes?.length, 1)
      await provider.remove(t.id)
      assert.equal((await volumes()).Volumes?.length ?? 0, 0)
    })

    it('starts a rolled-back replica again on the node that holds its volumes, and forgets it on delete', async () => {
      const t = swarmTarget(world, { volumes: [{ name: 'data', mountPath: '/data' }] })
      await provider.apply(t, context())
      await exec(await taskContainer(world.docker, t.id), ['sh', '-c', 'echo kept > /data/f'])
      await provider.release(t.id)
      assert.equal(await readPin(world.docker, t.id, 0, 0), world.nodeId, 'the pin outlives the service')
      await provider.apply({ ...t, restartGeneration: 1 }, context())
      const read = await exec(await taskContainer(world.docker, t.id), ['cat', '/data/f'])
      assert.equal(read.output, 'kept')
      await provider.remove(t.id)
      assert.equal(await readPin(world.docker, t.id, 0, 0), null)
    })

    it('fails a replica whose volumes are on a node that has left the swarm, as volumes_unreachable', async () => {
      const t = swarmTarget(world, { volumes: [{ name: 'data', mountPath: '/data' }] })
      await savePin(world.docker, { id: t.id, ownerId: t.ownerId, volumeGeneration: 0 }, 0, 'gone0node0id')
      try {
        await assert.rejects(provider.apply(t, context()), (error: ProviderError) => {
          assert.equal(error.kind, 'permanent')
          assert.equal(error.eventType, 'volumes_unreachable')
          return true
        })
      } finally {
        await provider.remove(t.id)
      }
    })

    it('is adopted by a restarted control plane: the same instances, nothing recreated', async () => {
      const t = swarmTarget(world, { replicas: 2 })
      const first = await provider.apply(t, context())
      const restarted = await newSwarmProvider()
      const listed = (await restarted.list()).filter((i) => i.deploymentId === t.id)
      assert.equal(listed.length, 2)
      const again = await restarted.apply(t, context())
      assert.deepEqual(
        again.instances.map((i) => [i.instanceId, i.startedAt?.toISOString()]),
        first.instances.map((i) => [i.instanceId, i.startedAt?.toISOString()]),
      )
    })

    it('is unavailable, never failed, while the manager does not answer', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'berth-swarm-relay-'))
      const relay = engineRelay(world.socketPath, join(dir, 'manager.sock'))
      await relay.start()
      try {
        const through = await newSwarmProvider({ engine: { host: `unix://${relay.path}` } })
        const t = swarmTarget(world)
        await through.apply(t, context())
        await relay.stop()
        assert.equal(await through.ping(), false)
        await assert.rejects(through.observe(t.id), (error: ProviderError) => {
          assert.equal(error.kind, 'unavailable')
          return true
        })
        await relay.start()
        assert.equal(await through.ping(), true)
        assert.equal((await through.observe(t.id))?.instances[0]?.state, 'running')
      } finally {
        await relay.stop()
        rmSync(dir, { recursive: true, force: true })
      }
    })
  })
}
