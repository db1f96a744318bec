import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { startPostgres } from '../scripts/postgres.ts'
import { loadConfig } from '../src/config/load.ts'
import { type Database, openDatabase } from '../src/db/client.ts'
import { runMigrations } from '../src/db/migrate.ts'
import { outboxEvents } from '../src/db/schema/index.ts'
import { createNotify } from '../src/notify/notify.ts'
import { signatureHeader } from '../src/notify/signing.ts'
import { createOutboundClient } from '../src/outbound/guarded-client.ts'
import { testVault } from '../test/helpers/vault.ts'

// Webhook deliveries from the outbox to a local receiver, on PGlite and on PostgreSQL: events are
// committed at a steady rate (each told to every one of WEBHOOKS webhooks), and the bench measures
// the deliveries per second that arrive and the time from each event's commit to its first
// delivery attempt (p50, p99). Side by side, the baseline: the same signed POSTs through the same
// guarded client, sent by a bare loop at the same concurrency with no database at all.
// Not a test: it prints figures. Usage: npm run bench:webhooks [-- <events/s> <seconds> <webhooks>]

const EVENTS_PER_SECOND = Number(process.argv[2] ?? 300)
const SECONDS = Number(process.argv[3] ?? 10)
const WEBHOOKS = Number(process.argv[4] ?? 4)
const CONCURRENCY_PER_TARGET = 16
const TICK_MS = 20

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0

/** A receiver answering 204 at once, noting when each (event, webhook) first arrived. */
async function startReceiver() {
  const firstArrival = new Map<string, number>()
  let arrivals = 0
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      arrivals++
      const key = `${req.headers['webhook-id']} ${req.url}`
      if (!firstArrival.has(key)) firstArrival.set(key, performance.now())
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    firstArrival,
    arrivals: () => arrivals,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

async function runBerth(label: string, database: Database) {
  await runMigrations(database)
  const receiver = await startReceiver()
  const config = loadConfig({
    env: {},
    flags: {
      outbound: { allow: ['127.0.0.1/32'] },
      notifications: {
        concurrency: WEBHOOKS * CONCURRENCY_PER_TARGET,
        concurrencyPerTarget: CONCURRENCY_PER_TARGET,
        // The bench's webhooks are one owner's: its share is all of them.
        concurrencyPerOwner: WEBHOOKS * CONCURRENCY_PER_TARGET,
      },
    },
  })
  const ownerId = randomUUID()
  await database.query(`insert into accounts (id, address) values ($1, $2)`, [
    ownerId,
    `0x${'ab'.repeat(20)}`,
  ])
  const vault = testVault(database.db)
  const notify = createNotify({ database, config, vault, logger: pino({ level: 'silent' }) })
  const principal = { kind: 'api_key' as const, account: { id: ownerId } as never }
  for (let i = 0; i < WEBHOOKS; i++) {
    await notify.targets.createWebhook(principal, {
      url: `${receiver.url}/hook${i}`,
      eventTypes: [],
      description: '',
      enabled: true,
    })
  }
  await notify.start()
  const committedAt = new Map<string, number>()
  const started = performance.now()
  const total = EVENTS_PER_SECOND * SECONDS
  let written = 0
  // Events are written in small statements on a steady clock, as the reconciler and billing do.
  while (written < total) {
    const due = Math.min(total, Math.round(((performance.now() - started) / 1000) * EVENTS_PER_SECOND))
    if (due > written) {
      const batch = Array.from({ length: due - written }, (_, i) => ({
        ownerId,
        type: 'balance.low' as const,
        payload: { n: written + i },
      }))
      const rows = await database.db
        .insert(outboxEvents)
        .values(batch.map((e) => ({ ...e, deploymentId: null })))
        .returning({ id: outboxEvents.id })
      const now = performance.now()
      for (const r of rows) committedAt.set(r.id, now)
      written = due
    }
    await new Promise((resolve) => setTimeout(resolve, TICK_MS))
  }
  const expected = total * WEBHOOKS
  while (receiver.firstArrival.size < expected) await new Promise((resolve) => setTimeout(resolve, 50))
  const elapsed = (performance.now() - started) / 1000
  const latencies: number[] = []
  for (const [key, at] of receiver.firstArrival) latencies.push(at - committedAt.get(key.split(' ')[0]!)!)
  latencies.sort((a, b) => a - b)
  await notify.stop()
  await receiver.stop()
  console.log(
    `${label}: ${expected} deliveries in ${elapsed.toFixed(1)} s (${Math.round(expected / elapsed)}/s offered ${EVENTS_PER_SECOND * WEBHOOKS}/s), ` +
      `commit → first attempt p50 ${quantile(latencies, 0.5).toFixed(1)} ms, p99 ${quantile(latencies, 0.99).toFixed(1)} ms, ` +
      `repeats ${receiver.arrivals() - expected}`,
  )
  return expected / elapsed
}

/** How fast the same signed POSTs go out of a bare loop: the ceiling the sender works under. */
async function runBaseline(): Promise<number> {
  const receiver = await startReceiver()
  const client = createOutboundClient({ allow: ['127.0.0.1/32'], timeoutMs: 10_000, maxBytes: 65_536 })
  const secret = `whsec_${Buffer.alloc(32, 1).toString('base64')}`
  const total = EVENTS_PER_SECOND * SECONDS * WEBHOOKS
  let next = 0
  const started = performance.now()
  const worker = async () => {
    for (let i = next++; i < total; i = next++) {
      const id = `evt_${i}`
      const body = JSON.stringify({
        id,
        type: 'balance.low',
        timestamp: new Date().toISOString(),
        data: { n: i },
      })
      const ts = Math.floor(Date.now() / 1000)
      await client.fetch(`${receiver.url}/hook${i % WEBHOOKS}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': id,
          'webhook-timestamp': String(ts),
          'webhook-signature': signatureHeader([secret], id, ts, body),
        },
        body,
        what: 'the target',
        truncate: true,
      })
    }
  }
  await Promise.all(Array.from({ length: WEBHOOKS * CONCURRENCY_PER_TARGET }, worker))
  const rate = total / ((performance.now() - started) / 1000)
  await receiver.stop()
  console.log(`baseline (bare loop, no database): ${total} POSTs at ${Math.round(rate)}/s`)
  return rate
}

const postgres = await startPostgres()
try {
  console.log(
    `${EVENTS_PER_SECOND} events/s for ${SECONDS} s, each to ${WEBHOOKS} webhooks (${CONCURRENCY_PER_TARGET} in flight each)`,
  )
  const baseline = await runBaseline()
  for (const [label, databaseUrl] of [
    ['PGlite', undefined],
    ['PostgreSQL', postgres.url],
  ] as const) {
    const database = await openDatabase({ dataDir: 'memory://', ...(databaseUrl ? { databaseUrl } : {}) })
    try {
      const rate = await runBerth(label, database)
      console.log(`  ${label} sustained ${(rate / baseline).toFixed(2)}× the bare loop's ceiling`)
    } finally {
      await database.close()
    }
  }
} finally {
  await postgres.stop()
}
