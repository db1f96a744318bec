import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type Docker from 'dockerode'
import { createPortAllocator } from '../../src/control/ports/port-allocator.ts'
import { deployments } from '../../src/db/schema/index.ts'
import { deploymentSpecSchema } from '../../src/domain/spec.ts'
import type { createDockerProvider } from '../../src/providers/docker/docker-provider.ts'
import { LABEL } from '../../src/providers/docker/labels.ts'
import { volumeNameOf } from '../../src/providers/docker/volumes.ts'
import {
  type ApplyContext,
  type DeploymentTarget,
  type Provider,
  ProviderError,
} from '../../src/providers/provider.ts'
import { openTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { createAccount } from '../helpers/stack.ts'
import { waitFor } from '../helpers/wait.ts'
import { exec } from './exec.ts'

// Host ports from the database and named volumes, against the real engine. Registered from
// providers-docker.test.ts, which owns the engine's lifetime (two files starting and stopping one
// engine concurrently would stop it under each other).

export interface DockerTestDeps {
  setUp(): Promise<{ docker: Docker; image: string }>
  newProvider(options?: Parameters<typeof createDockerProvider>[0]): Promise<Provider>
}

const context = (): ApplyContext => ({ signal: new AbortController().signal, progress: async () => {} })

export function dockerPortAndVolumeTests(deps: DockerTestDeps): void {
  describe('docker provider: host ports from the database', () => {
    let database: TestDatabase
    let ownerId: string
    let docker: Docker
    let image: string
    before(async () => {
      ;({ docker, image } = await deps.setUp())
      database = await openTestDatabase('pglite')
      ownerId = await createAccount(database)
    })
    after(() => database?.dispose())

    const newDeployment = async (): Promise<DeploymentTarget> => {
      const id = randomUUID()
      const spec = deploymentSpecSchema.parse({ name: 'web', image, ports: [{ containerPort: 80 }] })
      await database.db.insert(deployments).values({
        id,
        ownerId,
        name: `d-${id.slice(0, 8)}`,
        spec,
        provider: 'docker',
        status: 'pending',
        desiredState: 'running',
        stage: 'queued',
        percent: 0,
      })
      return { id, ownerId, spec, restartGeneration: 0 }
    }
    const allocatedFor = async (deploymentId: string) =>
      database.query<{ host_port: number }>(
        'SELECT host_port FROM port_allocations WHERE deployment_id = $1',
        [deploymentId],
      )

    it('skips a host port something else holds, serves on another, and frees it on remove', async () => {
      const holder = await listen()
      const held = (holder.address() as { port: number }).port
      try {
        const ports = createPortAllocator(database, {
          rangeStart: held,
          rangeEnd: held + 50,
          hostIp: '127.0.0.1',
        })
        const provider = await deps.newProvider({
          allocatePort: ports.allocate,
          blockPort: ports.block,
          releasePorts: ports.release,
        })
        const t = await newDeployment()
        // The lowest free port in the range is the held one: the engine refuses to bind it.
        await assert.rejects(provider.apply(t, context()), (error: unknown) => {
          assert.ok(error instanceof ProviderError)
          assert.equal(error.kind, 'transient')
          return true
        })
        // As the reconciler would: apply again (a port above can be taken by chance as well).
        const observed = await waitFor('an apply on a free port', async () => {
          try {
            return await provider.apply(t, context())
          } catch (error) {
            if (error instanceof ProviderError && error.kind === 'transient') return undefined
            throw error
          }
        })
        const port = Number(new URL(observed.endpoints[0]!.url).port)
        assert.notEqual(port, held)
        assert.ok(port > held && port <= held + 50)
        assert.deepEqual(await allocatedFor(t.id), [{ host_port: port }])
        await waitFor('the workload on its port', () => httpOk(observed.endpoints[0]!.url))

        await provider.remove(t.id)
        assert.deepEqual(await allocatedFor(t.id), [], 'ports are released on remove')
        assert.equal(
          (await docker.listContainers({ all: true, filters: { label: [`${LABEL.deployment}=${t.id}`] } }))
            .length,
          0,
        )
      } finally {
        await new Promise((resolve) => holder.close(resolve))
      }
    })
  })

  describe('docker provider: volumes', () => {
    let docker: Docker
    let image: string
    let provider: Provider
    const created: string[] = []
    before(async () => {
      ;({ docker, image } = await deps.setUp())
      provider = await deps.newProvider()
    })
    after(async () => {
      // Whatever a failed test left: the deployments' containers first, then their volumes.
      for (const id of created) await provider.remove(id).catch(() => {})
    })

    const target = (volumes: unknown[]): DeploymentTarget => {
      const id = randomUUID()
      created.push(id)
      // Unvalidated on purpose: the provider's own checks are under test too.
      const spec = {
        ...deploymentSpecSchema.parse({ name: 'db', image }),
        volumes,
      } as DeploymentTarget['spec']
      return { id, ownerId: randomUUID(), spec, restartGeneration: 0 }
    }

    it('keeps a named volume across a recreate and a stop, and removes it with the deployment', async () => {
      const t = target([{ name: 'data', mountPath: '/data', sizeMb: 64 }])
      const first = await provider.apply(t, context())
      const name = volumeNameOf(t.id, 'data')
      const volume = await docker.getVolume(name).inspect()
      assert.equal(volume.Labels[LABEL.managed], 'true')
      assert.equal(volume.Labels[LABEL.deployment], t.id)
      assert.equal(volume.Labels[LABEL.owner], t.ownerId)
      const firstContainer = docker.getContainer(first.instances[0]!.instanceId)
      assert.deepEqual(
        (await firstContainer.inspect()).Mounts.map((m) => [m.Type, m.Name, m.Destination]),
        [['volume', name, '/data']],
      )
      assert.equal((await exec(firstContainer, ['sh', '-c', 'echo kept > /data/file'])).exitCode, 0)

      const second = await provider.apply({ ...t, restartGeneration: 1 }, context())
      assert.notEqual(second.instances[0]!.instanceId, first.instances[0]!.instanceId)
      const secondContainer = docker.getContainer(second.instances[0]!.instanceId)
      assert.equal((await exec(secondContainer, ['cat', '/data/file'])).output.trim(), 'kept')

      await provider.stop(t.id)
      assert.equal((await docker.getVolume(name).inspect()).Name, name, 'kept on stop')

      await provider.remove(t.id)
      await assert.rejects(docker.getVolume(name).inspect(), (error: { statusCode?: number }) => {
        assert.equal(error.statusCode, 404)
        return true
      })
    })

    it('refuses a volume of the same name that is not the deployment’s, creating nothing', async () => {
      const t = target([{ name: 'data', mountPath: '/data' }])
      const name = volumeNameOf(t.id, 'data')
      await docker.createVolume({ Name: name })
      try {
        await assert.rejects(provider.apply(t, context()), (error: unknown) => {
          assert.ok(error instanceof ProviderError)
          assert.equal(error.kind, 'permanent')
          assert.equal(error.eventType, 'volume_conflict')
          return true
        })
        assert.equal(await provider.observe(t.id), null)
      } finally {
        await docker.getVolume(name).remove()
      }
    })

    it('enforces a sized volume: writing past its size fails, the data survives a restart, delete frees it', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'berth-sized-volumes-'))
      const sizedProvider = await deps.newProvider({ sizedVolumesDir: dir })
      const t = target([{ name: 'data', mountPath: '/data', sizeMb: 16 }])
      try {
        const first = await sizedProvider.apply(t, context())
        const container = docker.getContainer(first.instances[0]!.instanceId)
        const write = await exec(container, [
          'sh',
          '-c',
          'dd if=/dev/zero of=/data/big bs=1M count=40 2>&1; echo rc=$?',
        ])
        assert.match(write.output, /No space left on device/)
        assert.match(write.output, /rc=1/)
        const used = await exec(container, ['sh', '-c', 'du -m /data/big | cut -f1'])
        assert.ok(Number(used.output.trim()) <= 16, `wrote ${used.output.trim()} MB into 16`)
        await exec(container, ['sh', '-c', 'rm /data/big; echo kept > /data/file'])

        const second = await sizedProvider.apply({ ...t, restartGeneration: 1 }, context())
        const again = docker.getContainer(second.instances[0]!.instanceId)
        assert.equal((await exec(again, ['cat', '/data/file'])).output.trim(), 'kept')

        // A host restart unmounts the filesystem: nothing starts on the bare directory, and
        // berth's restart mounts it again first.
        await sizedProvider.stop(t.id)
        execFileSync('umount', [join(dir, volumeNameOf(t.id, 'data'))])
        await assert.rejects(again.start(), /no such file or directory/i)
        await sizedProvider.restart(t.id)
        assert.equal((await exec(again, ['cat', '/data/file'])).output.trim(), 'kept')

        await sizedProvider.remove(t.id)
        assert.deepEqual(readdirSync(dir), [], 'the filesystem is unmounted and deleted with the volume')
      } finally {
        await sizedProvider.remove(t.id).catch(() => {})
        rmSync(dir, { recursive: true, force: true })
      }
    })

    it('rejects an invalid volume before touching the engine', async () => {
      const t = target([{ name: 'data', mountPath: 'relative' }])
      await assert.rejects(provider.apply(t, context()), (error: unknown) => {
        assert.ok(error instanceof ProviderError)
        assert.equal(error.eventType, 'invalid_volume')
        return true
      })
      assert.equal(await provider.observe(t.id), null)
    })
  })
}

function listen(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve(server))
  })
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) })
    await response.text()
    return response.ok
  } catch {
    return false
  }
}
