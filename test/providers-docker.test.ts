import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import Docker from 'dockerode'
import { buildTestImage, type DockerEngine, ensureDockerEngine } from '../scripts/docker.ts'
import { type DeploymentSpecInput, deploymentSpecSchema } from '../src/domain/spec.ts'
import { createDockerProvider } from '../src/providers/docker/docker-provider.ts'
import { LABEL, networkNameOf, READ_ONLY_ROOTFS_LABEL } from '../src/providers/docker/labels.ts'
import { removeUnusedOwnerNetworks } from '../src/providers/docker/network.ts'
import {
  type ApplyContext,
  type DeploymentTarget,
  type Provider,
  ProviderError,
} from '../src/providers/provider.ts'
import { providerContract } from './contracts/provider-contract.ts'
import { dockerCapacityTests } from './docker/capacity-docker.ts'
import { dockerCrashTests } from './docker/crash-docker.ts'
import { dockerDefaultProviderTests } from './docker/default-provider.ts'
import { dockerOutageTests } from './docker/engine-outage.ts'
import { exec } from './docker/exec.ts'
import { dockerLimitTests, dockerOptionTests } from './docker/limits.ts'
import { dockerLogsAndUsageTests } from './docker/logs-usage.ts'
import { dockerNftHandoverTests } from './docker/nft-handover.ts'
import { dockerPortAndVolumeTests } from './docker/ports-volumes.ts'
import { dockerEventTests, dockerReconcileTests } from './docker/reconcile-docker.ts'
import { dockerRegistryAccessTests } from './docker/registry-access.ts'
import { dockerServiceTests } from './docker/services.ts'
import { labelEveryApply } from './helpers/run-label.ts'
import { waitFor } from './helpers/wait.ts'

// The provider contract and Docker-specific guarantees, against the real engine (started here if
// it is not running) and the locally built busybox test image. Everything created carries the
// label `berth-test.run=<this run>` (a spec label, so on the engine `user.berth-test.run`: spec
// labels reach it under `user.` only), and is removed by that label at the end, even on failure.

const RUN_LABEL = 'berth-test.run'
const ENGINE_RUN_LABEL = `user.${RUN_LABEL}`
const run = randomUUID()

let ready: Promise<{ engine: DockerEngine; docker: Docker; image: string }> | undefined
const setUp = () => {
  ready ??= (async () => {
    const engine = await ensureDockerEngine()
    const image = await buildTestImage(engine.socketPath)
    const docker = new Docker({ socketPath: engine.socketPath })
    // An engine restarted keeps the networks it had: owner networks an earlier run left go first.
    await removeUnusedOwnerNetworks(docker, 0)
    return { engine, docker, image }
  })()
  return ready
}

const newProvider = async (options: Parameters<typeof createDockerProvider>[0] = {}) => {
  const { engine } = await setUp()
  return labelEveryApply(
    createDockerProvider({
      engine: { host: `unix://${engine.socketPath}` },
      stopGraceSeconds: 2,
      ...options,
    }),
    RUN_LABEL,
    run,
  )
}

after(async () => {
  if (!ready) return
  const { engine, docker } = await ready
  const leftovers = await docker.listContainers({
    all: true,
    filters: { label: [`${ENGINE_RUN_LABEL}=${run}`] },
  })
  for (const c of leftovers) await docker.getContainer(c.Id).remove({ force: true, v: true })
  // Then every owner network left with nothing attached, theirs included (the engine would keep
  // them across restarts, and its address pools would run out over many runs).
  await removeUnusedOwnerNetworks(docker, 0)
  await engine.stop()
})

providerContract(
  'docker',
  async () => ({
    provider: await newProvider(),
    image: (await setUp()).image,
    cleanup: async () => {},
  }),
  { services: true },
)

describe('docker provider', () => {
  let docker: Docker
  let image: string
  let provider: Provider
  before(async () => {
    ;({ docker, image } = await setUp())
    provider = await newProvider({ pidsLimit: 64 })
  })

  const context = (): ApplyContext => ({ signal: new AbortController().signal, progress: async () => {} })
  const target = (spec: Partial<DeploymentSpecInput> = {}, ownerId = randomUUID()): DeploymentTarget => ({
    id: randomUUID(),
    ownerId,
    restartGeneration: 0,
    spec: deploymentSpecSchema.parse({ name: 'web', image, ...spec }),
  })
  const containersOf = (deploymentId: string) =>
    docker.listContainers({ all: true, filters: { label: [`${LABEL.deployment}=${deploymentId}`] } })

  it('hardens every container', async () => {
    const t = target({ resources: { cpus: 0.25, memoryMb: 64 }, ports: [{ containerPort: 80 }] })
    const observed = await provider.apply(t, context())
    const info = await docker.getContainer(observed.instances[0]!.instanceId).inspect()
    const host = info.HostConfig
    assert.deepEqual(host.CapDrop, ['ALL'])
    assert.deepEqual(host.CapAdd ?? [], [])
    assert.ok(host.SecurityOpt?.includes('no-new-privileges'))
    assert.equal(host.PidsLimit, 64)
    assert.equal(host.Memory, 64 * 1024 * 1024)
    assert.equal(host.MemorySwap, host.Memory)
    assert.equal(host.NanoCpus, 250_000_000)
    assert.equal(host.Privileged, false)
    const network = await docker.getNetwork(host.NetworkMode!).inspect()
    assert.equal(network.Name, networkNameOf(t.ownerId))
    assert.equal(network.Driver, 'bridge')
    assert.deepEqual(Object.keys(info.NetworkSettings.Networks), [networkNameOf(t.ownerId)])
    assert.ok(!host.PidMode || host.PidMode === '', 'no host PID namespace')
    assert.equal(host.IpcMode, 'private')
    assert.deepEqual(host.Binds ?? [], [])
    assert.deepEqual(info.Mounts, [])
    assert.equal(host.ReadonlyRootfs, false)
    assert.equal(info.Name, `/berth-${t.id}-0`)
    assert.equal(info.Config.Labels[LABEL.managed], 'true')
    assert.equal(info.Config.Labels[LABEL.owner], t.ownerId)
    assert.equal(info.Config.Labels[LABEL.replica], '0')
    assert.equal(info.Config.Labels[LABEL.restartGeneration], '0')
    assert.deepEqual(host.PortBindings?.['80/tcp']?.[0]?.HostIp, '127.0.0.1')
  })

  it('gives a read-only root filesystem with a writable tmpfs /tmp when the spec asks', async () => {
    const t = target({ labels: { [READ_ONLY_ROOTFS_LABEL]: 'true' } })
    const observed = await provider.apply(t, context())
    const container = docker.getContainer(observed.instances[0]!.instanceId)
    const info = await container.inspect()
    assert.equal(info.HostConfig.ReadonlyRootfs, true)
    assert.ok(info.HostConfig.Tmpfs?.['/tmp'])
    assert.equal(info.Config.Labels[READ_ONLY_ROOTFS_LABEL], undefined, 'berth.* spec labels are not copied')
    assert.notEqual((await exec(container, ['touch', '/rootfs-write'])).exitCode, 0)
    assert.equal((await exec(container, ['touch', '/tmp/ok'])).exitCode, 0)
  })

  it('serves an HTTP workload at its endpoint URL', async () => {
    const t = target({ ports: [{ containerPort: 80 }] })
    const observed = await provider.apply(t, context())
    assert.equal(observed.endpoints.length, 1)
    const url = observed.endpoints[0]!.url
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
    const body = await waitFor('the HTTP workload', async () => {
      // A ref'd timer per attempt: a request stuck on a half-open proxy connection is retried,
      // and keeps the event loop alive meanwhile (once seen: the loop emptied mid-request).
      const abort = new AbortController()
      const timer = setTimeout(() => abort.abort(), 2000)
      try {
        const response = await fetch(url, { signal: abort.signal })
        return response.ok ? await response.text() : undefined
      } finally {
        clearTimeout(timer)
      }
    })
    assert.match(body, /berth test image/)
  })

  it("isolates owners: an owner's containers reach each other, never another owner's", async () => {
    const a = await provider.apply(target({ replicas: 2 }), context())
    const b = await provider.apply(target(), context())
    const ipOf = async (instanceId: string) => {
      const nets = (await docker.getContainer(instanceId).inspect()).NetworkSettings.Networks
      const ip = Object.values(nets)[0]?.IPAddress ?? ''
      assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/)
      return ip
    }
    const a0 = docker.getContainer(a.instances[0]!.instanceId)
    const b0 = docker.getContainer(b.instances[0]!.instanceId)
    const [a1Ip, b0Ip] = [await ipOf(a.instances[1]!.instanceId), await ipOf(b0.id)]
    // Both servers answer from their own side first, so a failure below can only be the network.
    await waitFor('B serving locally', async () => (await httpProbe(b0, '127.0.0.1')) || undefined)
    await waitFor('A0 reaching A1', async () => (await httpProbe(a0, a1Ip)) || undefined)
    assert.equal(await httpProbe(a0, b0Ip), false, "A must not reach B's container")
    assert.equal(await httpProbe(b0, a1Ip), false, "B must not reach A's container")
  })

  it("deploys on a new network when the owner's network was removed behind its back", async () => {
    // As another control plane would do on the owner's last delete: this provider still has the
    // old network's id from the first deploy.
    const owner = randomUUID()
    const first = await provider.apply(target({}, owner), context())
    const oldNetwork = (await docker.getContainer(first.instances[0]!.instanceId).inspect()).HostConfig
      .NetworkMode!
    await docker.getContainer(first.instances[0]!.instanceId).remove({ force: true })
    await docker.getNetwork(oldNetwork).remove()

    // The engine takes a create on the vanished network and refuses only the start: that try is a
    // transient failure that leaves nothing behind, and the next one deploys.
    const again = target({}, owner)
    await assert.rejects(provider.apply(again, context()), (error: unknown) => {
      assert.ok(error instanceof ProviderError)
      assert.equal(error.kind, 'transient')
      return true
    })
    assert.equal((await containersOf(again.id)).length, 0)
    const second = await provider.apply(again, context())
    assert.equal(second.instances[0]?.state, 'running')
    const info = await docker.getContainer(second.instances[0]!.instanceId).inspect()
    assert.notEqual(info.HostConfig.NetworkMode, oldNetwork)
    assert.deepEqual(Object.keys(info.NetworkSettings.Networks), [networkNameOf(owner)])
  })

  it('sweeps owner networks nothing uses any more, and only those', async () => {
    const labelled = (owner: string) => ({ [LABEL.managed]: 'true', [LABEL.owner]: owner })
    // Left behind, as by a control plane that died between an owner's last container and its network.
    const leftOwner = randomUUID()
    const left = await docker.createNetwork({ Name: networkNameOf(leftOwner), Labels: labelled(leftOwner) })
    const used = await provider.apply(target(), context())
    const usedNetwork = (await docker.getContainer(used.instances[0]!.instanceId).inspect()).HostConfig
      .NetworkMode!
    const foreign = await docker.createNetwork({ Name: `not-berth-${run.slice(0, 8)}` })
    const exists = async (id: string) =>
      docker
        .getNetwork(id)
        .inspect()
        .then(() => true)
        .catch(() => false)
    try {
      // (Older leftovers of other tests on this engine may go; this one is a moment old.)
      await (await newProvider()).sweepUnused?.()
      assert.ok(await exists(left.id), 'a network made a moment ago is left alone')

      const sweeper = await newProvider({ networkSweepMinAgeMs: 0 })
      assert.ok(((await sweeper.sweepUnused?.()) ?? 0) >= 1)
      assert.equal(await exists(left.id), false)
      assert.ok(await exists(usedNetwork), 'a network with a container of its owner stays')
      assert.ok(await exists(foreign.id), 'a network berth did not label stays')
    } finally {
      await foreign.remove()
    }
  })

  it('reports an image it cannot pull as a permanent image_pull_failed with a short reason, leaving nothing behind', async () => {
    const strict = await newProvider({ pullAttempts: 2, pullRetryDelayMs: 10 })
    // A registry on loopback where nothing listens: the pull fails without leaving this machine.
    const image = `127.0.0.1:1/berth-test/does-not-exist:${run.slice(0, 8)}`
    const t = target({ image })
    await assert.rejects(strict.apply(t, context()), (error: unknown) => {
      assert.ok(error instanceof ProviderError)
      assert.equal(error.kind, 'permanent')
      assert.equal(error.eventType, 'image_pull_failed')
      assert.equal(error.message, `pulling ${image} failed: unreachable`)
      assert.ok(error.cause, 'the engine error is kept as the cause')
      return true
    })
    assert.equal(await strict.observe(t.id), null)
    assert.equal((await containersOf(t.id)).length, 0)
  })

  it('applies twice with exactly one container per replica', async () => {
    const t = target({ replicas: 2 })
    await provider.apply(t, context())
    await provider.apply(t, context())
    const names = (await containersOf(t.id)).map((c) => c.Names[0]).sort()
    assert.deepEqual(names, [`/berth-${t.id}-0`, `/berth-${t.id}-1`])
  })

  it('converges concurrent applies of one deployment to one container per replica', async () => {
    const t = target({ replicas: 2 })
    const results = await Promise.allSettled([provider.apply(t, context()), provider.apply(t, context())])
    assert.ok(results.some((r) => r.status === 'fulfilled'))
    await provider.apply(t, context())
    assert.equal((await containersOf(t.id)).length, 2)
  })

  it('recreates replicas older than the restart generation, keeping their host ports', async () => {
    const t = target({ ports: [{ containerPort: 80 }] })
    const first = await provider.apply(t, context())
    const second = await provider.apply({ ...t, restartGeneration: 1 }, context())
    assert.notEqual(second.instances[0]!.instanceId, first.instances[0]!.instanceId)
    assert.deepEqual(second.endpoints, first.endpoints)
    assert.equal((await containersOf(t.id)).length, 1)
  })

  it('never lists or touches containers berth did not label', async () => {
    const stranger = await docker.createContainer({
      Image: image,
      name: `berth-test-unlabelled-${run}`,
      Labels: { [RUN_LABEL]: run },
      HostConfig: { NetworkMode: 'none' },
    })
    await stranger.start()
    const t = target()
    await provider.apply(t, context())
    const listed = await provider.list()
    assert.ok(listed.some((i) => i.deploymentId === t.id))
    assert.ok(!listed.some((i) => i.instanceId === stranger.id))
    await provider.remove(t.id)
    assert.equal((await stranger.inspect()).State.Running, true)
    await stranger.remove({ force: true })
  })

  it('stops with SIGTERM within the grace period and reports exit codes', async () => {
    const t = target()
    await provider.apply(t, context())
    const started = Date.now()
    await provider.stop(t.id)
    assert.ok(Date.now() - started < 2000, 'the workload traps SIGTERM, so no SIGKILL wait')
    const instance = (await provider.observe(t.id))!.instances[0]!
    assert.equal(instance.state, 'exited')
    assert.equal(instance.exitCode, 0)
  })
})

dockerPortAndVolumeTests({ setUp, newProvider })
dockerReconcileTests({ setUp, newProvider })
dockerEventTests({ setUp, newProvider })
dockerLimitTests({ setUp, newProvider })
dockerOptionTests({ setUp, newProvider })
dockerOutageTests({ setUp, newProvider, socketPath: async () => (await setUp()).engine.socketPath })
dockerLogsAndUsageTests(async () => {
  const { engine, image } = await setUp()
  return { image, socketPath: engine.socketPath }
})
/** The engine as the end-to-end tests (a spawned `berth serve`) use it. */
const e2eEngine = async () => {
  const { engine, docker, image } = await setUp()
  return { docker, image, socketPath: engine.socketPath }
}
dockerCrashTests(e2eEngine)
dockerServiceTests(e2eEngine)
dockerNftHandoverTests(e2eEngine)
dockerRegistryAccessTests(e2eEngine)
dockerCapacityTests(e2eEngine)
dockerDefaultProviderTests(e2eEngine)

/** Whether an HTTP GET from inside `from` to `ip`:80 gets the test page (busybox wget crashes there). */
async function httpProbe(from: Docker.Container, ip: string): Promise<boolean> {
  assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/) // it goes into a shell line inside the container
  const { output } = await exec(from, ['sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${ip} 80`])
  return output.includes('berth test image')
}
