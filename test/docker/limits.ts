import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type Docker from 'dockerode'
import { systemSource } from '../../src/domain/actor.ts'
import { type DeploymentSpecInput, deploymentSpecSchema } from '../../src/domain/spec.ts'
import { LABEL } from '../../src/providers/docker/labels.ts'
import { volumeNameOf } from '../../src/providers/docker/volumes.ts'
import { type ApplyContext, type Provider, ProviderError } from '../../src/providers/provider.ts'
import { openTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { createAccount, createStack, type Stack } from '../helpers/stack.ts'
import { waitFor } from '../helpers/wait.ts'
import { exec } from './exec.ts'
import type { ReconcileDockerDeps } from './reconcile-docker.ts'

// Resource limits as a workload meets them: memory (the kernel's OOM killer, then berth's restart),
// pids (forks refused past the limit) and GPUs (refused up front by an engine without them).

const context = (): ApplyContext => ({ signal: new AbortController().signal, progress: async () => {} })

export function dockerLimitTests(deps: ReconcileDockerDeps): void {
  describe('docker limits', () => {
    let database: TestDatabase
    let stack: Stack
    let owner: string
    let image: string
    let docker: Docker
    let provider: Provider

    before(async () => {
      ;({ image, docker } = await deps.setUp())
      provider = await deps.newProvider({ pidsLimit: 32 })
      database = await openTestDatabase('pglite')
      stack = await createStack(database, {
        provider,
        flags: { health: { restartLadderSeconds: [0], maxRestarts: 2, restartWindowSeconds: 600 } },
      })
      owner = await createAccount(database)
    })
    after(async () => {
      await stack?.stop()
      await database?.dispose()
    })

    const spec = (extra: Partial<DeploymentSpecInput>) =>
      deploymentSpecSchema.parse({ name: `l${randomUUID().slice(0, 8)}`, image, ...extra })

    it('OOM-kills a memory hog at its limit, says so (oom_killed) and restarts it', async () => {
      const { row } = await stack.store.create({
        source: systemSource('test'),
        ownerId: owner,
        // Doubles a shell variable until the 16 MB limit stops it.
        spec: spec({
          command: ['sh', '-c', 'x=a; while true; do x=$x$x; done'],
          resources: { memoryMb: 16 },
        }),
        provider: 'docker',
      })
      await waitFor(
        'an oom_killed event followed by a restart',
        async () => {
          const events = await stack.events.list(row.id, 0, 1000)
          const oom = events.findIndex((e) => e.type === 'oom_killed')
          return oom >= 0 && events.slice(oom).some((e) => e.type === 'restarted')
        },
        60_000,
      )
      const oom = (await stack.events.list(row.id, 0, 1000)).find((e) => e.type === 'oom_killed')!
      assert.match(oom.message ?? '', /out of memory \(limit 16 MB\)/)
      assert.equal(oom.status, 'unhealthy')
    })

    it('holds the pids limit: forks past it are refused', async () => {
      const id = randomUUID()
      // A subshell starts sleepers until a fork is refused (busybox sh then gives up); the main
      // shell then reports and replaces itself, needing no fork of its own.
      const script =
        '(i=0; while [ $i -lt 100 ]; do i=$((i+1)); sleep 1000 & done) 2>&1; echo forked; exec sleep 1000'
      const observed = await provider.apply(
        { id, ownerId: randomUUID(), restartGeneration: 0, spec: spec({ command: ['sh', '-c', script] }) },
        context(),
      )
      const container = docker.getContainer(observed.instances[0]!.instanceId)
      const logs = await waitFor('the fork loop to finish', async () => {
        const text = (await container.logs({ stdout: true, stderr: true })).toString()
        return text.includes('forked') ? text : undefined
      })
      assert.match(logs, /can't fork|Resource temporarily unavailable/i, 'some forks were refused')
      const stats = (await container.stats({ stream: false })) as { pids_stats?: { current?: number } }
      const pids = stats.pids_stats?.current ?? 0
      assert.ok(pids > 16 && pids <= 32, `${pids} processes, limit 32`)
      await provider.remove(id)
    })

    it('refuses a GPU request on an engine without GPUs, permanently, creating nothing', async () => {
      const id = randomUUID()
      await assert.rejects(
        provider.apply(
          { id, ownerId: randomUUID(), restartGeneration: 0, spec: spec({ resources: { gpus: 1 } }) },
          context(),
        ),
        (error: unknown) => {
          assert.ok(error instanceof ProviderError)
          assert.equal(error.kind, 'permanent')
          assert.equal(error.eventType, 'gpu_unavailable')
          assert.match(error.message, /no GPUs/)
          return true
        },
      )
      const left = await docker.listContainers({
        all: true,
        filters: { label: [`${LABEL.deployment}=${id}`] },
      })
      assert.equal(left.length, 0)
    })
  })
}

export function dockerOptionTests(deps: ReconcileDockerDeps): void {
  describe('docker options: volume retention and added capabilities', () => {
    it('keeps named volumes on delete with volumeRetention keep', async () => {
      const { docker, image } = await deps.setUp()
      const keeping = await deps.newProvider({ volumeRetention: 'keep' })
      const id = randomUUID()
      await keeping.apply(
        {
          id,
          ownerId: randomUUID(),
          restartGeneration: 0,
          spec: deploymentSpecSchema.parse({
            name: 'kept',
            image,
            volumes: [{ name: 'data', mountPath: '/data' }],
          }),
        },
        context(),
      )
      await keeping.remove(id)
      assert.equal(await keeping.observe(id), null)
      const volume = docker.getVolume(volumeNameOf(id, 'data'))
      assert.equal((await volume.inspect()).Name, volumeNameOf(id, 'data'), 'the volume is kept')
      await volume.remove()
    })

    it('adds back an allow-listed capability the spec asks for, and nothing else', async () => {
      const { docker, image } = await deps.setUp()
      const provider = await deps.newProvider()
      const id = randomUUID()
      const observed = await provider.apply(
        {
          id,
          ownerId: randomUUID(),
          restartGeneration: 0,
          spec: deploymentSpecSchema.parse({
            name: 'cap',
            image,
            capAdd: [{ capability: 'CHOWN', reason: 'fixes ownership of its data at start' }],
          }),
        },
        context(),
      )
      const container = docker.getContainer(observed.instances[0]!.instanceId)
      const info = await container.inspect()
      assert.deepEqual(info.HostConfig.CapDrop, ['ALL'])
      assert.deepEqual(info.HostConfig.CapAdd, ['CHOWN'])
      // The workload (root in the container) can now chown, and still cannot mknod (dropped).
      const chown = await exec(container, ['sh', '-c', 'touch /owned && chown 1000 /owned'])
      assert.equal(chown.exitCode, 0, chown.output)
      assert.notEqual((await exec(container, ['mknod', '/null2', 'c', '1', '3'])).exitCode, 0)
      await provider.remove(id)
    })
  })
}
