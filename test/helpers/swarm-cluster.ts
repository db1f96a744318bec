import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Docker from 'dockerode'
import { TEST_IMAGE } from '../../scripts/docker.ts'
import { type Registry, startRegistry } from '../../scripts/swarm.ts'
import { waitFor } from './wait.ts'

// A swarm of several engines on this one machine: each engine is a dockerd with its own data
// root, exec root and socket, in a network namespace of its own, joined to a bridge this helper
// creates in the host's namespace. The first is the manager, the others join as workers. A
// registry on the bridge's address serves the test image to all of them. Everything is made here
// and removed by `destroy`, in reverse.

const SUBNET = '10.231.0'
const BRIDGE_ADDRESS = `${SUBNET}.1`

export interface ClusterEngine {
  name: string
  address: string
  socketPath: string
  docker: Docker
  nodeId: string
  /** Kills the engine with SIGKILL, as a machine that dies would. */
  kill(): void
}

export interface SwarmCluster {
  manager: ClusterEngine
  workers: ClusterEngine[]
  /** The test image as the nodes pull it from the registry on the bridge. */
  image: string
  registryHost: string
  destroy(): Promise<void>
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] })

export async function startSwarmCluster(size: number, mainSocket: string): Promise<SwarmCluster> {
  const tag = Math.random().toString(36).slice(2, 7)
  const bridge = `bsw${tag}`
  const root = mkdtempSync(join(tmpdir(), 'berth-swarm-cluster-'))
  const undo: Array<() => void | Promise<void>> = []
  const destroy = async () => {
    for (const step of undo.reverse()) {
      try {
        await step()
      } catch (error) {
        console.error(`swarm cluster clean-up: ${String(error)}`)
      }
    }
  }
  undo.push(() => rmSync(root, { recursive: true, force: true }))
  try {
    ip('link', 'add', bridge, 'type', 'bridge')
    undo.push(() => {
      ip('link', 'del', bridge)
    })
    ip('addr', 'add', `${BRIDGE_ADDRESS}/24`, 'dev', bridge)
    // The host's engine sets the FORWARD policy to DROP, and bridged traffic passes through it:
    // let the engines on this bridge talk to each other.
    const forward = ['FORWARD', '-i', bridge, '-o', bridge, '-j', 'ACCEPT']
    execFileSync('iptables', ['-I', ...forward])
    undo.push(() => {
      execFileSync('iptables', ['-D', ...forward])
    })
    ip('link', 'set', bridge, 'up')
    const registry: Registry = await startRegistry(BRIDGE_ADDRESS)
    undo.push(() => registry.stop())

    const engines: ClusterEngine[] = []
    for (let n = 0; n < size; n++) {
      engines.push(await startEngine({ tag, n, bridge, root, registryHost: registry.host, undo }))
    }
    const [manager, ...workers] = engines as [ClusterEngine, ...ClusterEngine[]]
    await manager.docker.swarmInit({
      ListenAddr: `${manager.address}:2377`,
      AdvertiseAddr: manager.address,
      DefaultAddrPool: ['10.232.0.0/16'],
      SubnetSize: 24,
    })
    const tokens = ((await manager.docker.swarmInspect()) as { JoinTokens: { Worker: string } }).JoinTokens
    for (const worker of workers) {
      await worker.docker.swarmJoin({
        ListenAddr: `${worker.address}:2377`,
        AdvertiseAddr: worker.address,
        RemoteAddrs: [`${manager.address}:2377`],
        JoinToken: tokens.Worker,
      })
    }
    for (const engine of engines) {
      engine.nodeId = ((await engine.docker.info()) as { Swarm: { NodeID: string } }).Swarm.NodeID
    }
    await waitFor(
      'every node ready',
      async () => {
        const nodes = (await manager.docker.listNodes()) as Array<{ Status?: { State?: string } }>
        return nodes.length === size && nodes.every((n) => n.Status?.State === 'ready')
      },
      60_000,
      200,
    )

    // The test image: from the host's engine into the manager's, then into the registry.
    const image = `${registry.host}/berth-test/busybox:latest`
    const saved = await new Docker({ socketPath: mainSocket }).getImage(TEST_IMAGE).get()
    await new Promise<void>((resolve, reject) =>
      manager.docker.loadImage(saved, {}, (error, stream) => {
        if (error || !stream) return reject(error)
        manager.docker.modem.followProgress(stream, (e: Error | null) => (e ? reject(e) : resolve()))
      }),
    )
    await manager.docker
      .getImage(TEST_IMAGE)
      .tag({ repo: `${registry.host}/berth-test/busybox`, tag: 'latest' })
    const pushed = await manager.docker.getImage(image).push({ authconfig: { serveraddress: registry.host } })
    await new Promise<void>((resolve, reject) =>
      manager.docker.modem.followProgress(pushed, (e: Error | null, out: Array<{ error?: string }>) =>
        e ? reject(e) : out.some((o) => o.error) ? reject(new Error(JSON.stringify(out))) : resolve(),
      ),
    )
    return { manager, workers, image, registryHost: registry.host, destroy }
  } catch (error) {
    await destroy()
    throw error
  }
}

async function startEngine(options: {
  tag: string
  n: number
  bridge: string
  root: string
  registryHost: string
  /** Where its clean-up goes, as soon as there is something to clean up. */
  undo: Array<() => void | Promise<void>>
}): Promise<ClusterEngine> {
  const { tag, n, bridge, root } = options
  const ns = `berth-sw-${tag}-${n}`
  const address = `${SUBNET}.${10 + n}`
  const dir = join(root, `engine-${n}`)
  const socketPath = join(dir, 'docker.sock')
  ip('netns', 'add', ns)
  const veth = `bsw${tag}v${n}`
  ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
  ip('link', 'set', veth, 'master', bridge)
  ip('link', 'set', veth, 'up')
  ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0')
  ip('-n', ns, 'link', 'set', 'eth0', 'up')
  ip('-n', ns, 'link', 'set', 'lo', 'up')
  // No default route: the engines reach each other and the registry on the bridge, nothing else.
  execFileSync('mkdir', ['-p', dir])
  const log = join(dir, 'dockerd.log')
  // nsenter, not `ip netns exec`: that one also remounts /sys for the namespace, which hides the
  // cgroup mounts under /sys/fs/cgroup that dockerd needs.
  const child: ChildProcess = spawn(
    'nsenter',
    [
      `--net=/var/run/netns/${ns}`,
      'dockerd',
      '--host',
      `unix://${socketPath}`,
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'dockerd.pid'),
      '--insecure-registry',
      options.registryHost,
      '--default-address-pool',
      `base=10.233.${n}.0/24,size=28`,
    ],
    { stdio: ['ignore', openSync(log, 'a'), openSync(log, 'a')], detached: true },
  )
  child.unref()
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
      await exited
      clearTimeout(timer)
    }
    // What a killed engine leaves running in its namespace (its containerd, shims and
    // containers): all started by this engine, so by this test.
    for (const pid of execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
      .split(/\s+/)
      .filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL')
      } catch {
        // gone meanwhile
      }
    }
    // What a killed engine leaves mounted (its containers' root filesystems, its namespaces).
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[1] ?? '')
      .filter((point) => point.startsWith(dir))
      .sort((a, b) => b.length - a.length)
    for (const point of mounts) execFileSync('umount', ['-l', point])
    ip('netns', 'del', ns)
    rmSync(dir, { recursive: true, force: true })
  }
  options.undo.push(stop)
  const docker = new Docker({ socketPath, host: undefined })
  await waitFor(`engine ${n} to answer`, () => docker.ping().then(() => true), 60_000, 100).catch((error) => {
    throw new Error(`${String(error)}\n${readFileSync(log, 'utf8').slice(-3000)}`)
  })
  const engine: ClusterEngine = {
    name: `engine-${n}`,
    address,
    socketPath,
    docker,
    nodeId: '',
    kill: () => child.kill('SIGKILL'),
  }
  return engine
}
