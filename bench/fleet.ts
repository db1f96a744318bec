import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { freePort, startPostgres } from '../scripts/postgres.ts'
import { type AgentKeyPair, generateAgentKey, signWithAgentKey } from '../src/fleet/agent-key.ts'
import { SIGNATURE_HEADER } from '../src/fleet/heartbeats.ts'
import { heartbeatOf } from '../test/helpers/fleet.ts'
import { startBerth } from '../test/helpers/server.ts'
import { waitFor } from '../test/helpers/wait.ts'
import { benchGroups, cpuPer, cpuSnapshot } from './cpu-account.ts'
import { type LoadResult, type PreparedRequest, percentileOf, runOpenLoop } from './heartbeat-load.ts'

// Heartbeat ingest of `berth serve` on PostgreSQL: NODES simulated nodes send signed heartbeats at
// RATE per second for SECONDS, open loop. The baseline is a bare HTTP endpoint that only reads and
// parses the body, driven by the same generator with heartbeats made the same way, in the same run. Then every
// node falls silent: how long after its budget (3 intervals + grace) the sweep finds each lost,
// while one healthy node that pauses for 20 s (interval 10 s) must never be.
// Not a test: it prints figures. Usage: npm run bench:fleet [-- <seconds> <rate> <nodes>]

const SECONDS = Number(process.argv[2] ?? 60)
const RATE = Number(process.argv[3] ?? 2_000)
const NODES = Number(process.argv[4] ?? 10_000)
const SOCKETS = 1000
const HEARTBEAT_SECONDS = 10
const GRACE_SECONDS = 5

const BARE_ENDPOINT = `
  import { createServer } from 'node:http'
  const server = createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString())
      res.writeHead(204).end()
    })
  })
  server.listen(Number(process.argv[1]), '127.0.0.1', () => console.log('listening'))`

async function startBareEndpoint(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--input-type=module', '-e', BARE_ENDPOINT, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()))
  return { url: `http://127.0.0.1:${port}`, child }
}

function describe(label: string, result: LoadResult): string {
  const failed = [...result.failed].map(([status, n]) => `${n}×${status || 'no answer'}`).join(', ')
  return `${label}: ${(result.ok / result.seconds).toFixed(0)}/s accepted over ${result.seconds.toFixed(1)} s, p50 ${percentileOf(result.latencies, 50).toFixed(2)} ms, p99 ${percentileOf(result.latencies, 99).toFixed(2)} ms, max ${percentileOf(result.latencies, 100).toFixed(1)} ms${failed ? `, failed ${failed}` : ''}`
}

const postgres = await startPostgres()
const stops: Array<() => Promise<unknown>> = [() => postgres.stop()]
try {
  const server = await startBerth({
    databaseUrl: postgres.url,
    env: {
      ...(process.env.BENCH_PROFILE ? { NODE_OPTIONS: '--cpu-prof --cpu-prof-dir=/tmp/berth-prof' } : {}),
      BERTH_LOG_LEVEL: 'warn',
      BERTH_FLEET__OPEN: 'true',
      BERTH_FLEET__HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS),
      BERTH_FLEET__LOSS_GRACE_SECONDS: String(GRACE_SECONDS),
    },
  })
  stops.unshift(() => server.stop())
  const bare = await startBareEndpoint()
  stops.unshift(async () => bare.child.kill())

  // The nodes are written straight to the database: enrolling 10,000 wallets is not what is measured.
  const client = new pg.Client({ connectionString: postgres.url })
  await client.connect()
  stops.unshift(() => client.end())
  const operatorId = randomUUID()
  await client.query(`insert into accounts (id, address) values ($1, $2)`, [
    operatorId,
    `0x${'ee'.repeat(20)}`,
  ])
  const nodes: Array<{ nodeId: string; key: AgentKeyPair }> = Array.from({ length: NODES + 1 }, () => ({
    nodeId: randomUUID(),
    key: generateAgentKey(),
  }))
  await client.query(
    `insert into fleet_nodes (id, operator_id, name, public_key, last_seen_at, enrolled_at)
     select id, $2, 'bench-' || left(id::text, 8), public_key, now(), now()
     from jsonb_to_recordset($1::jsonb) as v(id uuid, public_key text)`,
    [JSON.stringify(nodes.map((n) => ({ id: n.nodeId, public_key: n.key.publicKey }))), operatorId],
  )
  const paused = nodes.pop()!

  // Heartbeats are built and signed as they are sent, as agents do: that is the generator's CPU
  // (the same for both sides), and memory stays flat however long the run. Request i is node
  // i mod NODES's heartbeat number i div NODES + 1. One heartbeat of every node goes first,
  // unmeasured: a running fleet's nodes are known to the server (their keys read and cached).
  const heartbeat = (i: number): PreparedRequest => {
    const node = nodes[i % NODES]!
    const body = JSON.stringify(heartbeatOf(node, Math.floor(i / NODES) + 1, new Date()))
    return {
      body,
      headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signWithAgentKey(node.key, body) },
    }
  }
  const load = (url: string, path: string, from: number, seconds: number) =>
    runOpenLoop({
      url,
      path,
      rate: RATE,
      seconds,
      sockets: SOCKETS,
      expectStatus: 204,
      next: (i) => heartbeat(from + i),
    })

  const groupOf = benchGroups(server.child.pid)
  const baseline = await load(bare.url, '/', NODES, SECONDS)
  console.log(describe('bare endpoint (parse only)', baseline))
  await load(server.url, '/v1/fleet/heartbeats', 0, NODES / RATE)
  const cpuBefore = cpuSnapshot(groupOf)
  const measured = await load(server.url, '/v1/fleet/heartbeats', NODES, SECONDS)
  const cpuAfter = cpuSnapshot(groupOf)
  console.log(describe('berth (parse, verify, group commit)', measured))
  console.log(`  CPU per heartbeat: ${cpuPer(cpuBefore, cpuAfter, measured.ok)}`)
  console.log(
    `  ratio berth/bare: throughput ${(measured.ok / measured.seconds / (baseline.ok / baseline.seconds)).toFixed(3)}, p99 ${(percentileOf(measured.latencies, 99) / percentileOf(baseline.latencies, 99)).toFixed(2)}`,
  )

  // What berth answered, by outcome (its own count, warm-up included): refusals say why.
  const outcomes = (await (await fetch(`${server.url}/metrics`)).text())
    .split('\n')
    .filter((line) => line.startsWith('berth_fleet_heartbeats_total{'))
    .map((line) => line.replace(/^berth_fleet_heartbeats_total\{outcome="([^"]+)"\} /, '$1 '))
  console.log(`  heartbeats by outcome: ${outcomes.join(', ')}`)

  // Loss: every node is silent from now on, but one healthy node that pauses for 20 s once.
  const beat = async (seq: number) => {
    const body = JSON.stringify(heartbeatOf(paused, seq, new Date()))
    const res = await fetch(`${server.url}/v1/fleet/heartbeats`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signWithAgentKey(paused.key, body) },
      body,
    })
    if (res.status !== 204) throw new Error(`paused node's heartbeat answered ${res.status}`)
  }
  // It was enrolled before the run and silent during it: only losses after its first heartbeat count.
  const pausedFrom = new Date()
  const pausedBeats = (async () => {
    const at = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000))
    await beat(1)
    await at(HEARTBEAT_SECONDS)
    await beat(2)
    await at(2 * HEARTBEAT_SECONDS) // the pause: 20 s without a heartbeat
    await beat(3)
    await at(HEARTBEAT_SECONDS)
    await beat(4)
  })()
  await waitFor(
    `all ${NODES} silent nodes lost`,
    async () => {
      const { rows } = await client.query<{ n: string }>(
        `select count(*) as n from fleet_nodes where connectivity = 'lost'`,
      )
      return Number(rows[0]!.n) >= NODES
    },
    (3 * HEARTBEAT_SECONDS + GRACE_SECONDS) * 1000 + 60_000,
    100,
  )
  await pausedBeats
  const budget = 3 * HEARTBEAT_SECONDS + GRACE_SECONDS
  const { rows: late } = await client.query<{ p50: number; max: number }>(
    `select percentile_cont(0.5) within group (order by s) as p50, max(s) as max from (
       select extract(epoch from lost_at - last_seen_at) - $1 as s from fleet_nodes where connectivity = 'lost') x`,
    [budget],
  )
  const { rows: pausedRow } = await client.query<{ connectivity: string; losses: string }>(
    `select connectivity, (select count(*) from audit_entries where target = $2 and action = 'node.lost' and at > $3) as losses
     from fleet_nodes where id = $1`,
    [paused.nodeId, `node:${paused.nodeId}`, pausedFrom],
  )
  console.log(
    `loss detection: ${NODES} silent nodes found lost ${Number(late[0]!.p50).toFixed(2)} s (median) and at most ${Number(late[0]!.max).toFixed(2)} s after their ${budget} s budget`,
  )
  console.log(
    `a healthy node pausing 20 s (interval ${HEARTBEAT_SECONDS} s): ${pausedRow[0]!.connectivity}, found lost ${pausedRow[0]!.losses} times`,
  )
} finally {
  for (const stop of stops) await stop().catch((error: unknown) => console.error(error))
}
