import { sql } from 'drizzle-orm'
import { pino } from 'pino'
import { startPostgres } from '../scripts/postgres.ts'
import { loadConfig } from '../src/config/load.ts'
import { networksSchema } from '../src/config/payments-schema.ts'
import { createDeploymentStore } from '../src/control/deployment-store.ts'
import { openDatabase, queryRows } from '../src/db/client.ts'
import { runMigrations } from '../src/db/migrate.ts'
import { createEventBus } from '../src/events/bus.ts'
import { createEventLog } from '../src/events/event-log.ts'
import { createMetrics } from '../src/metrics/registry.ts'
import { createPayments } from '../src/payments/payments.ts'
import { anvilAccount, mine, startAnvil, walletFor } from '../test/helpers/anvil.ts'
import { deployTestToken, erc20Abi, receiptOf, transferToken } from '../test/helpers/contracts.ts'

// From the block that brings a payment to its confirmation depth to its credit, with the real
// treasury watcher running its own poll loop (as in `berth serve`). The chain makes a block every
// BLOCK_MS; each payment is a plain ERC-20 transfer from a known wallet, no hash submitted. The
// goal: a credit within one poll interval of the depth. Not a test: it prints figures.
// Usage: npm run bench:credit [-- <payments> <pollIntervalMs> <confirmations>]

const PAYMENTS = Number(process.argv[2] ?? 20)
const POLL_MS = Number(process.argv[3] ?? 1000)
const CONFIRMATIONS = Number(process.argv[4] ?? 3)
const BLOCK_MS = 500

const anvil = await startAnvil({ chainId: 31337 })
const postgres = await startPostgres()
try {
  const wallet = walletFor(anvil, 1)
  const token = await deployTestToken(walletFor(anvil, 0))
  await receiptOf(
    wallet,
    wallet.writeContract({
      address: token,
      abi: erc20Abi,
      functionName: 'mint',
      args: [wallet.account.address, 10n ** 15n],
    }),
  )
  const treasury = anvilAccount(9).address.toLowerCase()
  const networks = networksSchema.parse([
    {
      chainId: anvil.chainId,
      name: 'bench',
      rpcUrls: [anvil.rpcUrl],
      confirmations: CONFIRMATIONS,
      pollIntervalMs: POLL_MS,
      treasury,
      tokens: [
        { symbol: 'USDC', address: token, decimals: 6, price: { sources: [{ type: 'static', usd: '1' }] } },
      ],
    },
  ])
  console.log(
    `${PAYMENTS} payments, poll interval ${POLL_MS} ms, ${CONFIRMATIONS} confirmations, a block every ${BLOCK_MS} ms`,
  )
  for (const [kind, databaseUrl] of [
    ['PGlite', undefined],
    ['PostgreSQL', postgres.url],
  ] as const) {
    const database = await openDatabase({ dataDir: 'memory://', databaseUrl })
    await runMigrations(database)
    const bus = createEventBus(database)
    const store = createDeploymentStore(database, bus)
    const payments = await createPayments({
      database,
      store,
      events: createEventLog(database, bus),
      config: { ...loadConfig({ env: {} }), networks },
      metrics: createMetrics(async () => []),
      logger: pino({ level: 'silent' }),
    })
    await database.db.execute(
      sql`insert into accounts (id, address) values (gen_random_uuid(), ${wallet.account.address.toLowerCase()})`,
    )
    await payments.start()
    const latencies: number[] = []
    try {
      for (let i = 0; i < PAYMENTS; i++) {
        const receipt = await transferToken(wallet, token, treasury as `0x${string}`, 1_000_000n + BigInt(i))
        let depthReachedAt = 0
        for (let b = 0; b < CONFIRMATIONS; b++) {
          await new Promise((resolve) => setTimeout(resolve, BLOCK_MS))
          await mine(anvil, 1)
          depthReachedAt = performance.now()
        }
        // Measuring, not waiting for the system: poll the database finely until the credit shows.
        for (;;) {
          const [row] = await queryRows<{ status: string }>(
            database.db,
            sql`select status from chain_payments where tx_hash = ${receipt.transactionHash}`,
          )
          if (row?.status === 'credited') break
          if (performance.now() - depthReachedAt > 30_000)
            throw new Error(`payment ${i} not credited within 30 s`)
          await new Promise((resolve) => setTimeout(resolve, 5))
        }
        latencies.push(performance.now() - depthReachedAt)
      }
    } finally {
      await payments.stop()
      await database.close()
    }
    latencies.sort((a, b) => a - b)
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!
    console.log(
      `${kind.padEnd(10)} depth → credit: p50 ${at(0.5).toFixed(0)} ms, p99 ${at(0.99).toFixed(0)} ms, max ${latencies.at(-1)!.toFixed(0)} ms` +
        `  (max ${(latencies.at(-1)! / POLL_MS).toFixed(2)}× the poll interval; goal ≤ 1)`,
    )
  }
} finally {
  await postgres.stop()
  await anvil.stop()
}
