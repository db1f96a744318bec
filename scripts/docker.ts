import { spawn } from 'node:child_process'
import { copyFileSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Docker from 'dockerode'
import { removeUnusedOwnerNetworks } from '../src/providers/docker/network.ts'
import { aptInstall, onPath } from './apt.ts'

// The Docker engine for tests: use the one answering on the default socket, or
// install and start one. The test image is built locally from Debian's static busybox, because no
// registry can be reached here; nothing is ever pulled.

export const DEFAULT_SOCKET = '/var/run/docker.sock'
export const TEST_IMAGE = 'berth-test/busybox:latest'

export interface DockerEngine {
  socketPath: string
  /** Stops the engine only if this process started it; an engine found running is left alone. */
  stop(): Promise<void>
}

export async function engineAnswers(socketPath: string): Promise<boolean> {
  try {
    await new Docker({ socketPath, host: undefined, timeout: 2000 }).ping()
    return true
  } catch {
    return false
  }
}

export async function ensureDockerEngine(
  options: { socketPath?: string; timeoutMs?: number } = {},
): Promise<DockerEngine> {
  const socketPath = options.socketPath ?? DEFAULT_SOCKET
  if (await engineAnswers(socketPath)) return { socketPath, stop: async () => {} }

  if (!onPath('dockerd')) {
    if (process.getuid?.() !== 0) throw new Error('dockerd is not installed and installing it needs root')
    aptInstall(['docker.io'])
  }
  const logFile = join(mkdtempSync(join(tmpdir(), 'berth-dockerd-')), 'dockerd.log')
  // Owner networks come from this pool: /24s give room for 256 of them at once (the engine's
  // default pools hold about 30), and a range of its own keeps clear of bridges another engine left.
  const addressPool = 'base=10.213.0.0/16,size=24'
  const child = spawn('dockerd', ['--host', `unix://${socketPath}`, '--default-address-pool', addressPool], {
    stdio: ['ignore', openSync(logFile, 'a'), openSync(logFile, 'a')],
    // Its own process group, so a Ctrl-C meant for the test runner does not kill it mid-cleanup.
    detached: true,
  })
  child.unref()
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const startedHere = () => child.exitCode === null && child.signalCode === null

  const deadline = Date.now() + (options.timeoutMs ?? 60_000)
  // A dockerd started concurrently by another process makes ours exit (pid file taken); keep
  // waiting on the socket anyway, since that other engine is just as good.
  while (!(await engineAnswers(socketPath))) {
    if (Date.now() > deadline) {
      if (startedHere()) child.kill('SIGKILL')
      throw new Error(`dockerd did not answer within the deadline; log:\n${readLog(logFile)}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }

  return {
    socketPath,
    async stop() {
      if (!startedHere()) return
      child.kill('SIGTERM')
      // dockerd stops its containers first; give it a bounded time, then force it.
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
      await exited
      clearTimeout(timer)
    },
  }
}

/**
 * Builds `berth-test/busybox:latest` (FROM scratch + static busybox), unless it exists. Its default
 * command serves HTTP on port 80 and prints a line every second (so log following has something
 * to follow), and exits at once on SIGTERM.
 */
export async function buildTestImage(socketPath = DEFAULT_SOCKET): Promise<string> {
  const docker = new Docker({ socketPath, host: undefined })
  try {
    await docker.getImage(TEST_IMAGE).inspect()
    return TEST_IMAGE
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 404) throw error
  }
  if (!isStaticBusybox('/bin/busybox')) aptInstall(['busybox-static'])

  const context = mkdtempSync(join(tmpdir(), 'berth-test-image-'))
  try {
    const here = new URL('./test-image/', import.meta.url)
    copyFileSync('/bin/busybox', join(context, 'busybox'))
    for (const name of ['Dockerfile', 'workload.sh', 'index.html']) {
      copyFileSync(new URL(name, here), join(context, name))
    }
    const stream = await docker.buildImage(
      { context, src: ['Dockerfile', 'busybox', 'workload.sh', 'index.html'] },
      { t: TEST_IMAGE, rm: true, forcerm: true },
    )
    const events = await new Promise<Array<{ error?: string; stream?: string }>>((resolve, reject) =>
      docker.modem.followProgress(stream, (error: Error | null, output: Array<{ error?: string }>) =>
        error ? reject(error) : resolve(output),
      ),
    )
    // The engine reports a failed build as an event in a successful stream.
    const failure = events.find((e) => e.error)
    if (failure) {
      const log = events.map((e) => e.stream ?? '').join('')
      throw new Error(`building ${TEST_IMAGE} failed: ${failure.error}\n${log}`)
    }
    return TEST_IMAGE
  } finally {
    rmSync(context, { recursive: true, force: true })
  }
}

/** A static ELF has no PT_INTERP program header (no dynamic loader); read the header, not `file`. */
function isStaticBusybox(path: string): boolean {
  let elf: Buffer
  try {
    elf = readFileSync(path)
  } catch {
    return false
  }
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false // 64-bit ELF only
  const phoff = Number(elf.readBigUInt64LE(0x20))
  const phentsize = elf.readUInt16LE(0x36)
  const phnum = elf.readUInt16LE(0x38)
  for (let i = 0; i < phnum; i++) {
    if (elf.readUInt32LE(phoff + i * phentsize) === 3) return false // PT_INTERP
  }
  return true
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-4000)
  } catch {
    return '(no log)'
  }
}

// `node --import tsx scripts/docker.ts` starts the engine (left running) and builds the image.
if (import.meta.url === `file://${process.argv[1]}`) {
  const engine = await ensureDockerEngine()
  console.log(`engine answers on ${engine.socketPath}; image ${await buildTestImage(engine.socketPath)}`)
}

/**
 * Removes berth's owner networks whose owner has no berth container on the engine at
 * `socketPath`, if one answers: what earlier test runs left behind (a run killed halfway; a suite
 * whose server stopped before its deletes finished). Left to pile up they use up the engine's
 * address pools (about 30 networks), and every later create of an owner network fails.
 */
export async function removeUnusedBerthNetworks(socketPath = DEFAULT_SOCKET): Promise<number> {
  if (!(await engineAnswers(socketPath))) return 0
  // berth's own orphan sweep, without its minimum age: no test has started yet.
  return removeUnusedOwnerNetworks(new Docker({ socketPath, host: undefined }), 0)
}
