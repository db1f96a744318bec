import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { createSiweMessage } from 'viem/siwe'
import { freePort } from '../../scripts/postgres.ts'
import { createPostgresDatabase } from './db.ts'
import { waitFor } from './wait.ts'

// The real `berth serve` process, for end-to-end tests: spawned through bin/berth.js on a free port,
// ready once GET /health answers 200. Its output is kept for failure messages.

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
export const berthBin = join(repoRoot, 'bin', 'berth.js')

/**
 * Quotas lifted for tests and benches where one account creates hundreds of deployments: what
 * they measure is the control plane under load, not a tenant's fair share.
 */
export const LIFTED_QUOTAS: Record<string, string> = {
  ...Object.fromEntries(
    ['DEPLOYMENTS', 'REPLICAS', 'HOST_PORTS', 'CPUS', 'VOLUMES'].map((key) => [
      `BERTH_QUOTAS__${key}`,
      '1000000',
    ]),
  ),
  // Each deployment asks for megabytes by the hundred: room for a benchmark's tens of thousands.
  BERTH_QUOTAS__MEMORY_MB: '1000000000',
  BERTH_QUOTAS__DISK_MB: '1000000000',
}

export interface StartOptions {
  env?: Record<string, string>
  args?: string[]
  dataDir?: string
  databaseUrl?: string
  /** How long to wait for /health (default 30 s). */
  readyTimeoutMs?: number
  /** Run on this Docker engine (its socket path), as the default provider, instead of simulated. */
  dockerSocket?: string
}

export interface RunningBerth {
  /** Where the current process listens (a restart moves it to a new port). */
  url: string
  port: number
  dataDir: string
  /** The PostgreSQL database it runs on, when it is not the embedded one. */
  databaseUrl?: string
  /** The current process (replaced by restart()). */
  child: ChildProcess
  /** Everything the process wrote to stdout and stderr (the tail, for failure messages). */
  output(): string
  /** SIGTERM, then wait for the exit. */
  stop(): Promise<void>
  /** SIGKILL, then wait for the exit: a crash. */
  kill9(): Promise<void>
  /** Start again on a new port, with the same data dir, database and public URL (stopping first if still running). */
  restart(): Promise<void>
}

const outputLimit = 256 * 1024
const tempDirs: string[] = []
process.once('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
})

/**
 * The child's environment: this process's, minus berth's own settings (the test runner's
 * BERTH_TEST_* would be read as unknown config keys, and a stray DATABASE_URL would switch the
 * database), plus what the test asks for.
 */
function childEnv(options: StartOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('BERTH_') || name.startsWith('DATABASE_URL')) continue
    env[name] = value
  }
  if (options.databaseUrl) env.DATABASE_URL = options.databaseUrl
  // The simulated provider, even where a Docker engine answers (tests opt into docker themselves),
  // and no docker provider at all: its orphan sweep would remove the docker tests' containers.
  const provider = options.dockerSocket
    ? {
        BERTH_PROVIDERS__DEFAULT: 'docker',
        BERTH_PROVIDERS__DOCKER__ENABLED: 'true',
        BERTH_PROVIDERS__DOCKER__HOST: `unix://${options.dockerSocket}`,
        // The sweep would remove other tests' containers, which have no row in this database.
        BERTH_RECONCILER__SWEEP_INTERVAL_SECONDS: '86400',
      }
    : { BERTH_PROVIDERS__DEFAULT: 'simulated', BERTH_PROVIDERS__DOCKER__ENABLED: 'false' }
  // No swarm provider unless a test asks for it: its sweep would remove the swarm tests' services.
  return { ...env, ...provider, BERTH_PROVIDERS__SWARM__ENABLED: 'false', ...options.env }
}

export async function startBerth(options: StartOptions = {}): Promise<RunningBerth> {
  let port = await freePort()
  let dataDir = options.dataDir
  if (!dataDir) {
    dataDir = mkdtempSync(join(tmpdir(), 'berth-e2e-'))
    tempDirs.push(dataDir)
  }
  let url = `http://127.0.0.1:${port}`
  const extra = options.args ?? []
  // The SIWE domain is the public URL's host, so it must be the address the tests connect to. It
  // stays the first address across restarts, so that sessions signed in before stay valid.
  const publicUrl = extra.includes('--public-url') ? [] : ['--public-url', url]
  const env = childEnv(options)
  let output = ''
  let child!: ChildProcess
  let exited!: Promise<void>

  const spawnChild = async () => {
    // The same V8 flag as bin/berth.js's shebang, which is not read when node runs the file itself.
    const args = [
      '--liftoff-only',
      berthBin,
      'serve',
      '--port',
      String(port),
      '--data-dir',
      dataDir,
      ...publicUrl,
      ...extra,
    ]
    child = spawn(process.execPath, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] })
    const collect = (chunk: Buffer) => {
      output += chunk.toString()
      if (output.length > outputLimit) output = output.slice(-outputLimit)
    }
    child.stdout?.on('data', collect)
    child.stderr?.on('data', collect)
    exited = new Promise((resolve) => child.once('exit', () => resolve()))
    await waitUntilReady(url, child, () => output, options.readyTimeoutMs ?? 30_000)
  }

  const terminate = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill(signal)
    await exited
  }

  await spawnChild().catch(async (error) => {
    await terminate('SIGKILL')
    throw error
  })

  return {
    get url() {
      return url
    },
    get port() {
      return port
    },
    dataDir,
    get child() {
      return child
    },
    output: () => output,
    stop: () => terminate('SIGTERM'),
    kill9: () => terminate('SIGKILL'),
    async restart() {
      await terminate('SIGTERM')
      output += '\n--- restart ---\n'
      // On a new port: the old one, free since the crash, may have been taken by any other process
      // meanwhile, whose answers would pass for this server's.
      port = await freePort()
      url = `http://127.0.0.1:${port}`
      await spawnChild().catch(async (error) => {
        await terminate('SIGKILL')
        throw error
      })
    },
  }
}

async function waitUntilReady(url: string, child: ChildProcess, output: () => string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs
  let last = 'no answer yet'
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `berth serve exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output()}`,
      )
    }
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) })
      const body = await response.text()
      if (response.status === 200) return
      last = `${response.status} ${body}`
    } catch (error) {
      last = (error as Error).message
    }
    if (Date.now() > deadline) {
      throw new Error(`berth serve was not ready within ${timeoutMs} ms (${last}):\n${output()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

export interface SignedIn {
  token: string
  address: `0x${string}`
  privateKey: `0x${string}`
}

/** Sign-In with Ethereum against a running server, with a fresh wallet unless one is given. */
export async function signIn(
  url: string,
  privateKey: `0x${string}` = generatePrivateKey(),
): Promise<SignedIn> {
  const account = privateKeyToAccount(privateKey)
  const server = new URL(url)
  const nonceResponse = await api(url).post<{ nonce: string }>('/v1/auth/nonce')
  if (nonceResponse.status !== 200)
    throw new Error(`nonce: ${nonceResponse.status} ${JSON.stringify(nonceResponse.body)}`)
  const now = new Date()
  const message = createSiweMessage({
    domain: server.host,
    uri: server.origin,
    address: account.address,
    version: '1',
    chainId: 1,
    nonce: nonceResponse.body.nonce,
    issuedAt: now,
    expirationTime: new Date(now.getTime() + 10 * 60 * 1000),
    statement: 'Sign in to berth',
  })
  const signature = await account.signMessage({ message })
  const verified = await api(url).post<{ token: string; address: string }>('/v1/auth/verify', {
    message,
    signature,
  })
  if (verified.status !== 200) throw new Error(`verify: ${verified.status} ${JSON.stringify(verified.body)}`)
  return { token: verified.body.token, address: account.address, privateKey }
}

export interface ApiResponse<T> {
  status: number
  headers: Headers
  body: T
}

export interface Api {
  get<T = unknown>(path: string, headers?: Record<string, string>): Promise<ApiResponse<T>>
  post<T = unknown>(path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse<T>>
  del<T = unknown>(path: string, headers?: Record<string, string>): Promise<ApiResponse<T>>
}

/** A tiny fetch helper: JSON bodies in and out (text when the answer is not JSON), never throws on status. */
export function api(url: string, token?: string): Api {
  const call = async <T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await response.text()
    let parsed: unknown = text
    if ((response.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text)
    return { status: response.status, headers: response.headers, body: parsed as T }
  }
  return {
    get: (path, headers) => call('GET', path, undefined, headers),
    post: (path, body, headers) => call('POST', path, body, headers),
    del: (path, headers) => call('DELETE', path, undefined, headers),
  }
}

/** `berth serve` on a fresh database of the throwaway PostgreSQL server; `stop()` also drops it. */
export async function startBerthOnPostgres(
  options: Omit<StartOptions, 'databaseUrl'> = {},
): Promise<RunningBerth> {
  const database = await createPostgresDatabase()
  const server = await startBerth({ ...options, databaseUrl: database.url }).catch(async (error: unknown) => {
    await database.drop()
    throw error
  })
  return {
    ...server,
    databaseUrl: database.url,
    // A restart moves the process (and its port): read them from the live server.
    get child() {
      return server.child
    },
    get url() {
      return server.url
    },
    get port() {
      return server.port
    },
    async stop() {
      await server.stop()
      await database.drop()
    },
  }
}

/**
 * `kill -9` the server `crashes` times while work goes on, each at a random moment (after a random
 * number of further items of `total` were accepted, as `done()` counts them), restarting it each time.
 */
export async function crashAtRandomMoments(
  server: RunningBerth,
  options: { crashes: number; total: number; done: () => number; timeoutMs: number },
): Promise<void> {
  const { crashes, total, done } = options
  for (let crash = 0; crash < crashes; crash++) {
    const target = Math.min(total, done() + 1 + Math.floor(Math.random() * (total / crashes)))
    await waitFor(
      'progress before the next crash',
      () => done() >= target || done() === total,
      options.timeoutMs,
    )
    await server.kill9()
    await server.restart()
  }
}

/**
 * Sends `call` until it answers one of the `ok` statuses: during a crash test the server is down
 * between a crash and its restart, and a request whose answer was lost is sent again.
 */
export function untilAnswered<T>(
  what: string,
  call: () => Promise<{ status: number; body: T }>,
  ok: number[],
  timeoutMs: number,
): Promise<{ status: number; body: T }> {
  return waitFor(
    what,
    async () => {
      const response = await call()
      return ok.includes(response.status) ? response : undefined
    },
    timeoutMs,
  )
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs the real `berth` CLI against `server` to completion, as a user whose shell has only PATH, a
 * fresh HOME (no saved session) and the given BERTH_* variables.
 */
export function runCli(server: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [berthBin, ...args], {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: mkdtempSync(join(tmpdir(), 'berth-cli-home-')),
        BERTH_SERVER: server,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}
