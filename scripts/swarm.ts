import { spawn } from 'node:child_process'
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Docker from 'dockerode'
import { aptInstall, onPath } from './apt.ts'
import { DEFAULT_SOCKET, TEST_IMAGE } from './docker.ts'

// The swarm for tests: the local engine made a one-node swarm manager (advertised on loopback)
// unless it is one, and a real registry (Debian's docker-registry) on loopback, holding the test
// image. Swarm nodes pull an image whenever they start a task: from a registry on 127.0.0.1 that
// pull stays on this machine, where a locally built tag would send the engine to Docker Hub.

/** Overlay subnets come from here, clear of the bridge pool the test engine is started with. */
const OVERLAY_POOL = '10.214.0.0/16'

export interface Swarm {
  /** Leaves swarm mode only if this call turned it on; an existing swarm is left as it was. */
  leave(): Promise<void>
}

export async function ensureSwarm(socketPath = DEFAULT_SOCKET): Promise<Swarm> {
  const docker = new Docker({ socketPath, host: undefined })
  const info = (await docker.info()) as { Swarm?: { LocalNodeState?: string } }
  if (info.Swarm?.LocalNodeState === 'active') return { leave: async () => {} }
  // The bridge a swarm node's containers reach the host through: made by the init if missing, and
  // then removed on leaving, since swarm mode leaves it behind.
  const hadGatewayBridge = (await docker.listNetworks({ filters: { name: ['docker_gwbridge'] } })).length > 0
  await docker.swarmInit({
    ListenAddr: '127.0.0.1:2377',
    AdvertiseAddr: '127.0.0.1',
    DefaultAddrPool: [OVERLAY_POOL],
    SubnetSize: 24,
  })
  return {
    async leave() {
      await docker.swarmLeave({ force: true })
      if (!hadGatewayBridge) await docker.getNetwork('docker_gwbridge').remove()
    },
  }
}

export interface Registry {
  /** `127.0.0.1:<port>`: the prefix of image references it serves. */
  host: string
  stop(): Promise<void>
}

/** Starts a registry listening on `address` (loopback by default), storing into a temp dir. */
export async function startRegistry(address = '127.0.0.1'): Promise<Registry> {
  if (!onPath('docker-registry')) aptInstall(['docker-registry'])
  const dir = mkdtempSync(join(tmpdir(), 'berth-registry-'))
  const port = await freePort(address)
  const host = `${address}:${port}`
  const config = join(dir, 'config.yml')
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log: { level: warn }',
      'storage:',
      `  filesystem: { rootdirectory: ${join(dir, 'data')} }`,
      '  delete: { enabled: true }',
      'http:',
      `  addr: ${host}`,
      '',
    ].join('\n'),
  )
  const log = join(dir, 'registry.log')
  const child = spawn('docker-registry', ['serve', config], {
    stdio: ['ignore', openSync(log, 'a'), openSync(log, 'a')],
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const deadline = Date.now() + 20_000
  for (;;) {
    const ok = await fetch(`http://${host}/v2/`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) break
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL')
      throw new Error(
        `the registry did not answer on ${host}; log:\n${readFileSync(log, 'utf8').slice(-2000)}`,
      )
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    host,
    async stop() {
      child.kill('SIGTERM')
      await exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Pushes the local test image to the registry; returns its reference there. */
export async function pushTestImage(registryHost: string, socketPath = DEFAULT_SOCKET): Promise<string> {
  const docker = new Docker({ socketPath, host: undefined })
  const repo = `${registryHost}/berth-test/busybox`
  await docker.getImage(TEST_IMAGE).tag({ repo, tag: 'latest' })
  // The engine wants an X-Registry-Auth header even for a registry without accounts.
  const stream = await docker.getImage(`${repo}:latest`).push({ authconfig: { serveraddress: registryHost } })
  const events = await new Promise<Array<{ error?: string }>>((resolve, reject) =>
    docker.modem.followProgress(stream, (error: Error | null, output: Array<{ error?: string }>) =>
      error ? reject(error) : resolve(output),
    ),
  )
  const failure = events.find((e) => e.error)
  if (failure) throw new Error(`pushing ${repo} failed: ${failure.error}`)
  return `${repo}:latest`
}

/** Removes the tag `pushTestImage` gave the test image (the image itself stays, under its own tag). */
export async function untagTestImage(reference: string, socketPath = DEFAULT_SOCKET): Promise<void> {
  await new Docker({ socketPath, host: undefined })
    .getImage(reference)
    .remove({ noprune: true })
    .catch((error: { statusCode?: number }) => {
      if (error.statusCode !== 404) throw error
    })
}

function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, address, () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}
