import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// A throwaway PostgreSQL cluster from the installed server binaries, on a free loopback port.

export const PG_BIN = process.env.BERTH_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin'

export interface ThrowawayPostgres {
  url: string
  port: number
  stop(): Promise<void>
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

export async function startPostgres(): Promise<ThrowawayPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-pg-'))
  const dataDir = join(dir, 'data')
  // initdb and postgres refuse to run as root; run them as the unprivileged `postgres` user if so.
  const asUser = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : []
  if (asUser.length) execFileSync('chown', ['-R', 'postgres', dir])
  const run = (cmd: string, args: string[]) => {
    const [bin, ...rest] = [...asUser, join(PG_BIN, cmd), ...args]
    execFileSync(bin!, rest, { stdio: 'pipe' })
  }
  run('initdb', ['-D', dataDir, '-U', 'berth', '--auth=trust', '--no-sync', '-E', 'UTF8'])
  const port = await freePort()
  const [bin, ...rest] = [
    ...asUser,
    join(PG_BIN, 'postgres'),
    '-D',
    dataDir,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
    '-c',
    'max_connections=400',
  ]
  const child = spawn(bin!, rest, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const url = `postgres://berth@127.0.0.1:${port}/postgres`
  await waitForPostgres(url, () => stderr)
  return {
    url,
    port,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        // A fast shutdown: open client connections must not hold the test run open.
        run('pg_ctl', ['stop', '-D', dataDir, '-m', 'fast', '-w'])
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

async function waitForPostgres(url: string, logs: () => string): Promise<void> {
  const { default: pg } = await import('pg')
  const deadline = Date.now() + 30_000
  for (;;) {
    const client = new pg.Client({ connectionString: url })
    try {
      await client.connect()
      await client.end()
      return
    } catch (error) {
      await client.end().catch(() => {})
      if (Date.now() > deadline)
        throw new Error(`PostgreSQL did not start: ${(error as Error).message}\n${logs()}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}
