import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startPostgres } from '../scripts/postgres.ts'
import { loadOrCreateKeyring } from '../src/secrets/keyring.ts'
import { LIFTED_QUOTAS, type RunningBerth, signIn, startBerth } from '../test/helpers/server.ts'
import { benchGroups, cpuPer, cpuSnapshot } from './cpu-account.ts'
import { leanClient } from './lean-client.ts'
import { orgOverhead } from './org-overhead.ts'

// Throughput of the whole control plane: N deployments created through the API on the simulated
// provider with zero latency, timed until every one is running, on PGlite and on PostgreSQL.
// Alongside: p50/p99 of GET /v1/deployments/{id} under that load, against GET /health on the same
// server at the same time as the baseline, the idle resident memory of `berth serve`, and what
// acting for an organisation costs against acting for oneself (org-overhead.ts).
// Not a test: it prints figures and ratios. Usage: npm run bench [-- <count>]

const COUNT = Number(process.argv[2] ?? 10_000)
const CREATE_CONCURRENCY = 32

// Every server of this bench shares one master key file: two of them use one PostgreSQL database.
const keyDir = mkdtempSync(join(tmpdir(), 'berth-bench-keys-'))
loadOrCreateKeyring(join(keyDir, 'master.key'))
process.once('exit', () => rmSync(keyDir, { recursive: true, force: true }))

const env = {
  BERTH_MASTER_KEY_FILE: join(keyDir, 'master.key'),
  BERTH_LOG_LEVEL: 'warn',
  BERTH_PROVIDERS__SIMULATED__PULL_MS: '0',
  BERTH_PROVIDERS__SIMULATED__CREATE_MS: '0',
  BERTH_PROVIDERS__SIMULATED__START_MS: '0',
  BERTH_RECONCILER__CONCURRENCY: '64',
  BERTH_RECONCILER__RESYNC_SECONDS: '600',
  // One account creates everything as fast as berth takes it: that is the measurement, so the
  // per-account write limit (a tenant's fair share in production) is lifted here.
  BERTH_RATE_LIMITS__WRITES_PER_MINUTE: '10000000',
  BERTH_RATE_LIMITS__WRITE_BURST: '10000000',
  ...LIFTED_QUOTAS,
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

async function timed(call: () => Promise<unknown>): Promise<number> {
  const started = performance.now()
  await call()
  return performance.now() - started
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN)
  return kb / 1024
}

async function run(label: string, server: RunningBerth) {
  const { token } = await signIn(server.url)
  // One socket per writer, plus one for the reader.
  const client = leanClient(server.url, token, CREATE_CONCURRENCY + 1)
  const ids: string[] = []
  const groupOf = benchGroups(server.child.pid)
  const cpuBefore = cpuSnapshot(groupOf)
  const started = performance.now()
  let next = 0
  let creating = true
  const getLatencies: number[] = []
  const healthLatencies: number[] = []
  // Readers run while the writers work, one request at a time each, so latencies are under load.
  const readers = (async () => {
    while (creating || ids.length === 0) {
      const id = ids[Math.floor(Math.random() * ids.length)]
      if (id) getLatencies.push(await timed(() => client.call('GET', `/v1/deployments/${id}`)))
      healthLatencies.push(await timed(() => client.call('GET', '/health')))
    }
  })()
  // Should the writers fail, their error is the one to see, not the readers' when the server stops.
  readers.catch(() => {})
  await Promise.all(
    Array.from({ length: CREATE_CONCURRENCY }, async () => {
      while (next < COUNT) {
        const i = next++
        const response = await client.call<{ id: string }>('POST', '/v1/deployments', {
          name: `bench-${i}`,
          image: 'example/app:1',
        })
        if (response.status !== 202)
          throw new Error(`create ${i}: ${response.status} ${JSON.stringify(response.body)}`)
        ids.push(response.body.id)
      }
    }),
  )
  const createdMs = performance.now() - started
  for (;;) {
    const { body } = await client.call<{ total: number }>('GET', '/v1/deployments?status=running&limit=1')
    if (body.total >= COUNT) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const cpuAfter = cpuSnapshot(groupOf)
  creating = false
  await readers
  client.close()
  const allRunningMs = performance.now() - started
  const perSecond = COUNT / (allRunningMs / 1000)
  const p50 = percentile(getLatencies, 50)
  const p99 = percentile(getLatencies, 99)
  const h50 = percentile(healthLatencies, 50)
  const h99 = percentile(healthLatencies, 99)
  console.log(`\n${label}: ${COUNT} deployments`)
  console.log(
    `  accepted in ${(createdMs / 1000).toFixed(1)} s, all running after ${(allRunningMs / 1000).toFixed(1)} s`,
  )
  console.log(
    `  throughput        ${perSecond.toFixed(0)} deployments/s   (goal 500/s on PostgreSQL: ratio ${(perSecond / 500).toFixed(2)})`,
  )
  console.log(
    `  GET deployment    p50 ${p50.toFixed(1)} ms  p99 ${p99.toFixed(1)} ms  (n=${getLatencies.length})`,
  )
  console.log(`  GET /health       p50 ${h50.toFixed(1)} ms  p99 ${h99.toFixed(1)} ms  (baseline, same load)`)
  console.log(`  CPU per deployment ${cpuPer(cpuBefore, cpuAfter, COUNT)}`)
  console.log(`  ratio to baseline p50 ${(p50 / h50).toFixed(2)}×  p99 ${(p99 / h99).toFixed(2)}×`)
}

/**
 * RSS of an idle `berth serve` on an existing data dir (a restart), once settled: V8 gives back the
 * start-up work's memory only when it finds the process idle, 10–25 s after start on this machine
 * (about 167 MB before, 145 MB after, with PGlite). So it is sampled every 5 s for 45 s, and the
 * last sample counts; the series is printed with it.
 */
async function idleMemory(label: string, databaseUrl?: string) {
  const server = await startBerth({ env, ...(databaseUrl ? { databaseUrl } : {}) })
  try {
    await server.restart()
    const samples: number[] = []
    for (let i = 0; i < 9; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5_000))
      samples.push(rssMb(server.child.pid!))
    }
    const mb = samples.at(-1)!
    console.log(
      `idle resident memory of berth serve (${label}): ${mb.toFixed(0)} MB (goal ≤ 150 MB: ratio ${(mb / 150).toFixed(2)}; every 5 s: ${samples.map((s) => s.toFixed(0)).join(' ')})`,
    )
  } finally {
    await server.stop()
  }
}

await idleMemory('PGlite')
const pglite = await startBerth({ env })
try {
  await run('PGlite', pglite)
  await orgOverhead('PGlite', pglite)
} finally {
  await pglite.stop()
}
const postgres = await startPostgres()
try {
  await idleMemory('PostgreSQL', postgres.url)
  const server = await startBerth({ env, databaseUrl: postgres.url })
  try {
    await run('PostgreSQL', server)
    await orgOverhead('PostgreSQL', server)
  } finally {
    await server.stop()
  }
} finally {
  await postgres.stop()
}
