import { encodeFunctionData, type Hex, numberToHex, toEventSelector } from 'viem'
import { startPostgres } from '../scripts/postgres.ts'
import { createRpcClients } from '../src/chain/rpc.ts'
import { ChainScanner } from '../src/chain/scanner.ts'
import type { ChainConsumer } from '../src/chain/types.ts'
import { type Db, openDatabase } from '../src/db/client.ts'
import { runMigrations } from '../src/db/migrate.ts'
import { anvilAccount, blockNumber, rpc, startAnvil, walletFor } from '../test/helpers/anvil.ts'
import { deployTestToken, erc20Abi, receiptOf } from '../test/helpers/contracts.ts'

// How fast the chain scanner catches up: an anvil chain of BLOCKS blocks holding TRANSFERS ERC-20
// transfers (in groups every few blocks), scanned from genesis by a consumer that counts what it is
// given, on PGlite and on PostgreSQL. The baseline is the same eth_getLogs ranges read straight
// from the node with no scanner and no database. A second run watches native transfers too, which
// means reading every block with its transactions, over a shorter stretch.
// Not a test: it prints figures. Usage: npm run bench:chain [-- <blocks> <transfers> <range>]

const BLOCKS = Number(process.argv[2] ?? 100_000)
const TRANSFERS = Number(process.argv[3] ?? 10_000)
const RANGE = Number(process.argv[4] ?? 2_000)
const PER_BLOCK = 5
const NATIVE_BLOCKS = 5_000
const TRANSFER = toEventSelector('Transfer(address,address,uint256)')

// anvil 1.7's mining slows down with chain length under Prague (the EIP-2935 block-hash history
// grows the state it re-hashes per block) and with full state history kept: 100,000 blocks would
// take hours. Cancun rules and pruned state history keep it constant (the scanner reads blocks,
// logs and receipts only, which are all kept).
const anvil = await startAnvil({ chainId: 31337, args: ['--hardfork', 'cancun', '--prune-history'] })
const stops: Array<() => Promise<void>> = [() => anvil.stop()]
try {
  const wallet = walletFor(anvil)
  const token = await deployTestToken(wallet)
  const payer = anvilAccount(0).address
  await receiptOf(
    wallet,
    wallet.writeContract({ address: token, abi: erc20Abi, functionName: 'mint', args: [payer, 10n ** 18n] }),
  )

  // Build the chain: PER_BLOCK transfers in one block, then empty blocks up to the next group,
  // with automine off so each group lands in one block; one batched HTTP request per group.
  const setupStarted = performance.now()
  await rpc(anvil.rpcUrl, 'evm_setAutomine', [false])
  let nonce = await rpc<Hex>(anvil.rpcUrl, 'eth_getTransactionCount', [payer, 'pending']).then(Number)
  const groups = Math.ceil(TRANSFERS / PER_BLOCK)
  const gap = Math.max(1, Math.floor((BLOCKS - Number(await blockNumber(anvil))) / groups))
  let sent = 0
  for (let g = 0; g < groups; g++) {
    const batch = []
    for (let i = 0; i < PER_BLOCK && sent < TRANSFERS; i++, sent++) {
      // Few distinct recipients: anvil re-hashes all storage per block, so a token with 10,000
      // holders would make every later block slower.
      const to = `0x${((sent % 16) + 1).toString(16).padStart(40, '0')}`
      const data = encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [to as Hex, 1n] })
      batch.push({
        jsonrpc: '2.0',
        id: i,
        method: 'eth_sendTransaction',
        params: [{ from: payer, to: token, data, gas: '0x20000', nonce: numberToHex(nonce++) }],
      })
    }
    const answers = (await (
      await fetch(anvil.rpcUrl, {
        method: 'POST',
        body: JSON.stringify(batch),
        headers: { 'content-type': 'application/json' },
      })
    ).json()) as Array<{ error?: { message: string } }>
    const failed = answers.find((a) => a.error)
    if (failed) throw new Error(`eth_sendTransaction: ${failed.error!.message}`)
    await rpc(anvil.rpcUrl, 'anvil_mine', [numberToHex(gap)])
  }
  const rest = BLOCKS - Number(await blockNumber(anvil))
  if (rest > 0) await rpc(anvil.rpcUrl, 'anvil_mine', [numberToHex(rest)])
  const head = await blockNumber(anvil)
  console.log(
    `chain: ${head} blocks, ${TRANSFERS} transfers (${PER_BLOCK} per block every ${gap} blocks), built in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s`,
  )

  // Baseline: the same ranges, eth_getLogs only.
  const baselineStarted = performance.now()
  let baselineLogs = 0
  for (let from = 0n; from <= head; from += BigInt(RANGE)) {
    const to = from + BigInt(RANGE) - 1n < head ? from + BigInt(RANGE) - 1n : head
    const logs = await rpc<unknown[]>(anvil.rpcUrl, 'eth_getLogs', [
      { fromBlock: numberToHex(from), toBlock: numberToHex(to), address: [token], topics: [TRANSFER] },
    ])
    baselineLogs += logs.length
  }
  const baselineSeconds = (performance.now() - baselineStarted) / 1000
  console.log(
    `\nbaseline eth_getLogs, range ${RANGE}: ${fmt(Number(head) / baselineSeconds)} blocks/s, ${baselineLogs} logs in ${baselineSeconds.toFixed(2)} s`,
  )

  const postgres = await startPostgres()
  stops.push(() => postgres.stop())
  for (const [kind, databaseUrl] of [
    ['PGlite', undefined],
    ['PostgreSQL', postgres.url],
  ] as const) {
    const database = await openDatabase({ dataDir: 'memory://', databaseUrl })
    await runMigrations(database)
    try {
      const logs = await scan(database.db, token, head, RANGE, false)
      console.log(
        `${kind.padEnd(10)} scanner, range ${RANGE}: ${fmt(logs.blocksPerSecond)} blocks/s, ${logs.logs} logs in ${logs.seconds.toFixed(2)} s` +
          `  (${(logs.seconds / baselineSeconds).toFixed(2)}× the baseline's time)`,
      )
      if (logs.logs !== TRANSFERS + 1)
        throw new Error(`expected ${TRANSFERS + 1} logs (the mint too), got ${logs.logs}`)
      const native = await scan(database.db, token, BigInt(NATIVE_BLOCKS), RANGE, true)
      console.log(
        `${kind.padEnd(10)} scanner with native transfers, ${NATIVE_BLOCKS} blocks: ${fmt(native.blocksPerSecond)} blocks/s`,
      )
    } finally {
      await database.close()
    }
  }
} finally {
  for (const stop of stops.reverse()) await stop()
}

async function scan(db: Db, token: Hex, until: bigint, range: number, native: boolean) {
  let logs = 0
  let transfers = 0
  const consumer: ChainConsumer = {
    name: native ? 'bench-native' : 'bench',
    filters: () => ({
      logs: [{ address: [token], topics: [TRANSFER] }],
      nativeTo: native ? [anvilAccount(9).address] : [],
    }),
    async onConfirmed(_tx, batch) {
      logs += batch.logs.length
      transfers += batch.nativeTransfers.length
    },
    async onReorg() {
      throw new Error('no reorg expected')
    },
  }
  const head = await blockNumber(anvil)
  const scanner = new ChainScanner({
    chainId: 31337,
    clients: createRpcClients([anvil.rpcUrl]),
    // Stop at `until`: everything above it counts as unconfirmed.
    confirmations: Number(head - until),
    pollIntervalMs: 1000,
    maxBlockRange: range,
    startBlock: 0n,
    consumer,
    db,
  })
  const started = performance.now()
  const result = await scanner.tick()
  const seconds = (performance.now() - started) / 1000
  if (result.cursor !== until) throw new Error(`scanner stopped at ${result.cursor}, not ${until}`)
  return { logs, transfers, seconds, blocksPerSecond: Number(until + 1n) / seconds }
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US')
}
