import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import {
  type Address,
  encodeFunctionData,
  type Hex,
  type PublicClient,
  parseEther,
  toEventSelector,
} from 'viem'
import { createRpcClients, RpcDisagreementError, readAgreed } from '../src/chain/rpc.ts'
import { ChainScanner, type ChainScannerOptions, ReorgTooDeepError } from '../src/chain/scanner.ts'
import { createMetrics } from '../src/metrics/registry.ts'
import {
  type Anvil,
  anvilAccount,
  blockNumber,
  mine,
  publicClientFor,
  reorg,
  revert,
  snapshot,
  startAnvil,
  walletFor,
} from './helpers/anvil.ts'
import { deployTestToken, erc20Abi, receiptOf, transferToken } from './helpers/contracts.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import {
  createRecordingConsumer,
  createRecordingTables,
  type RecordingConsumer,
} from './helpers/recording-consumer.ts'
import { type RpcProxy, startRpcProxy } from './helpers/rpc-proxy.ts'
import { waitFor } from './helpers/wait.ts'

// The chain cursor on a real anvil node and both databases, seen through a consumer that writes
// what it is handed to tables: what it ends up holding is what payments would have credited.

const TRANSFER = toEventSelector('Transfer(address,address,uint256)')
const payer = anvilAccount(0).address
const treasury = anvilAccount(9).address

for (const kind of databaseKinds) {
  describe(`chain scanner (${kind})`, () => {
    let database: TestDatabase
    let anvil: Anvil
    let token: Address
    let clients: PublicClient[]
    let seq = 0
    before(async () => {
      ;[database, anvil] = await Promise.all([openTestDatabase(kind), startAnvil({ chainId: 31337 })])
      await createRecordingTables(database)
      const wallet = walletFor(anvil)
      token = await deployTestToken(wallet)
      await receiptOf(
        wallet,
        wallet.writeContract({
          address: token,
          abi: erc20Abi,
          functionName: 'mint',
          args: [payer, 10n ** 15n],
        }),
      )
      clients = createRpcClients([anvil.rpcUrl])
    })
    after(async () => {
      await Promise.all([database?.dispose(), anvil?.stop()])
    })

    /** A consumer (own cursor) watching token transfers to the treasury, from the next block on. */
    const setup = async (options: Partial<ChainScannerOptions> = {}) => {
      const consumer = createRecordingConsumer(database, `c${++seq}`, {
        logs: [
          {
            address: [token],
            topics: [TRANSFER, null, `0x${treasury.slice(2).toLowerCase().padStart(64, '0')}`],
          },
        ],
      })
      const startBlock = (await blockNumber(anvil)) + 1n
      const scanner = newScanner(consumer, { startBlock, ...options })
      return { consumer, scanner, startBlock }
    }
    const newScanner = (consumer: RecordingConsumer, options: Partial<ChainScannerOptions> = {}) =>
      new ChainScanner({
        chainId: 31337,
        clients,
        confirmations: 3,
        pollIntervalMs: 20,
        maxBlockRange: 100,
        consumer,
        db: database.db,
        ...options,
      })
    /** Sends `amount` to the treasury in its own block; returns the block number. */
    const pay = async (amount: bigint) => {
      const receipt = await transferToken(walletFor(anvil), token, treasury, amount)
      return receipt.blockNumber
    }
    const amounts = async (consumer: RecordingConsumer) => (await consumer.records()).map((r) => r.value)
    /** The batches cover [first, last] with no gap and no overlap. */
    const assertContiguous = async (consumer: RecordingConsumer, first: bigint, last: bigint) => {
      const batches = await consumer.batches()
      let next = first
      for (const b of batches) {
        assert.equal(b.from, next, `batch ${b.from}-${b.to} starts where the previous ended`)
        next = b.to + 1n
      }
      assert.equal(next - 1n, last)
    }

    it('delivers a log once, and only after the confirmation depth', async () => {
      const { consumer, scanner, startBlock } = await setup({ confirmations: 3 })
      const paidIn = await pay(1_000_000n)
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [], 'not at depth yet')
      await mine(anvil, 2)
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [], 'two confirmations are not three')
      await mine(anvil, 1)
      const result = await scanner.tick()
      assert.equal(result.cursor, paidIn)
      assert.deepEqual(await amounts(consumer), [1_000_000n])
      await mine(anvil, 5)
      await scanner.tick()
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [1_000_000n], 'delivered once')
      await assertContiguous(consumer, startBlock, (await blockNumber(anvil)) - 3n)
      assert.equal(scanner.lag, 3n)
    })

    it('sees only the canonical log after a reorg shallower than the depth, without onReorg', async () => {
      const { consumer, scanner } = await setup({ confirmations: 5 })
      const paidIn = await pay(1_111n)
      await mine(anvil, 1)
      await scanner.tick()
      // The block with the payment is replaced by one where the payer sent another amount.
      const data = encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [treasury, 2_222n] })
      await reorg(anvil, 2, [{ tx: { from: payer, to: token, data, gas: '0x30000' }, blockOffset: 0 }])
      await mine(anvil, 5)
      await scanner.tick()
      const records = await consumer.records()
      assert.deepEqual(
        records.map((r) => [r.value, r.blockNumber]),
        [[2_222n, paidIn]],
      )
      assert.deepEqual(await consumer.reorgs(), [])
    })

    it('rewinds with onReorg from the right block after a reorg deeper than the depth', async () => {
      const { consumer, scanner } = await setup({ confirmations: 2 })
      const first = await pay(100n)
      await mine(anvil, 2)
      await scanner.tick()
      const second = await pay(200n)
      await mine(anvil, 2)
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [100n, 200n])
      // Replace the second payment's block and the two after it; the payment moves one block later.
      const data = encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [treasury, 201n] })
      await reorg(anvil, 3, [{ tx: { from: payer, to: token, data, gas: '0x30000' }, blockOffset: 1 }])
      const result = await scanner.tick()
      assert.equal(result.rewoundTo, first, 'back to the newest applied block still canonical')
      assert.deepEqual(await consumer.reorgs(), [first + 1n])
      assert.deepEqual(await amounts(consumer), [100n], 'the moved payment is not confirmed yet')
      await mine(anvil, 1)
      await scanner.tick()
      const records = await consumer.records()
      assert.deepEqual(
        records.map((r) => [r.value, r.blockNumber]),
        [
          [100n, first],
          [201n, second + 1n],
        ],
      )
    })

    it('rewinds when the chain got shorter than the cursor', async () => {
      const { consumer, scanner } = await setup({ confirmations: 2 })
      const before = await snapshot(anvil)
      await pay(300n)
      await mine(anvil, 2)
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [300n])
      await revert(anvil, before)
      const result = await scanner.tick()
      assert.ok(result.rewoundTo !== undefined && result.rewoundTo <= (await blockNumber(anvil)))
      assert.deepEqual(await amounts(consumer), [], 'the payment is gone with its block')
      await pay(301n)
      await mine(anvil, 2)
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [301n])
    })

    it('stops with ReorgTooDeepError, changing nothing, when no kept position is canonical', async () => {
      const { consumer, scanner } = await setup({ confirmations: 1, maxBlockRange: 1, keepBlocks: 1 })
      await pay(400n)
      await mine(anvil, 1)
      const { cursor } = await scanner.tick()
      await reorg(anvil, 3)
      await assert.rejects(scanner.tick(), ReorgTooDeepError)
      assert.deepEqual(await amounts(consumer), [400n])
      assert.deepEqual(await consumer.reorgs(), [])
      const [row] = await database.query<{ n: string }>(
        'select block_number::text as n from chain_cursors where consumer = $1',
        [consumer.name],
      )
      assert.equal(BigInt(row!.n), cursor)
    })

    it('applies nothing of a range whose consumer failed, and the range again on the next pass', async () => {
      const { consumer, startBlock } = await setup()
      let failNext = true
      const failing: RecordingConsumer = {
        ...consumer,
        async onConfirmed(tx, batch) {
          await consumer.onConfirmed(tx, batch)
          if (failNext) {
            failNext = false
            throw new Error('consumer failed after writing')
          }
        },
      }
      const scanner = newScanner(failing, { confirmations: 0, startBlock })
      await pay(500n)
      await assert.rejects(scanner.tick(), /consumer failed after writing/)
      assert.deepEqual(await amounts(consumer), [], 'its writes were rolled back with the cursor')
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [500n])
      await assertContiguous(consumer, startBlock, await blockNumber(anvil))
    })

    it('splits ranges the RPC refuses, and resumes from the cursor after the RPC went down', async () => {
      const proxy: RpcProxy = await startRpcProxy(anvil.rpcUrl)
      try {
        const consumer = createRecordingConsumer(database, `c${++seq}`, {
          logs: [{ address: [token], topics: [TRANSFER] }],
        })
        const startBlock = (await blockNumber(anvil)) + 1n
        const paid: bigint[] = []
        for (let i = 1n; i <= 12n; i++) {
          await pay(i)
          paid.push(i)
          await mine(anvil, 6)
        }
        const last = await blockNumber(anvil)
        proxy.setMaxLogRange(8)
        const scanner = newScanner(consumer, {
          clients: createRpcClients([proxy.url]),
          confirmations: 0,
          maxBlockRange: 30,
          startBlock,
        })
        // Down part-way through: some ranges are applied, the rest is not, the pass fails.
        proxy.downAfter(25)
        await assert.rejects(scanner.tick())
        const partial = await consumer.records()
        assert.ok(
          partial.length > 0 && partial.length < paid.length,
          `${partial.length} of ${paid.length} applied`,
        )
        proxy.setDown(false)
        const result = await scanner.tick()
        assert.equal(result.cursor, last)
        assert.deepEqual(await amounts(consumer), paid, 'every payment once, in order')
        await assertContiguous(consumer, startBlock, last)
        assert.ok(proxy.rejected.length > 0, 'the proxy refused wide ranges')
        assert.ok(
          proxy.served.every((span) => span <= 8n),
          'only ranges within the limit were served',
        )
      } finally {
        await proxy.stop()
      }
    })

    it('a new scanner on the same database resumes from the cursor', async () => {
      const { consumer, scanner, startBlock } = await setup({ confirmations: 1 })
      await pay(1n)
      await pay(2n)
      await mine(anvil, 1)
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [1n, 2n])
      await pay(3n)
      await mine(anvil, 1)
      // A fresh process: its start block is ignored, the stored cursor decides.
      const restarted = newScanner(consumer, { confirmations: 1, startBlock: 0n })
      await restarted.tick()
      assert.deepEqual(await amounts(consumer), [1n, 2n, 3n])
      await assertContiguous(consumer, startBlock, (await blockNumber(anvil)) - 1n)
    })

    it('two scanners of one consumer racing each other apply every range once', async () => {
      const { consumer, startBlock } = await setup()
      const paid: bigint[] = []
      for (let i = 1n; i <= 6n; i++) {
        await pay(i * 10n)
        paid.push(i * 10n)
        await mine(anvil, 2)
      }
      // Two processes' scanners: separate objects, separate transactions on the same rows.
      const options = { confirmations: 0, maxBlockRange: 2, startBlock }
      const [one, two] = [newScanner(consumer, options), newScanner(consumer, options)]
      const last = await blockNumber(anvil)
      await waitFor('both scanners to reach the head', async () => {
        const [a, b] = await Promise.all([one.tick(), two.tick()])
        return a.cursor === last && b.cursor === last
      })
      assert.deepEqual(await amounts(consumer), paid)
      await assertContiguous(consumer, startBlock, last)
    })

    it('keeps only the newest keepBlocks positions for walking back', async () => {
      const { consumer, scanner } = await setup({ confirmations: 0, maxBlockRange: 1, keepBlocks: 3 })
      await mine(anvil, 10)
      const { cursor } = await scanner.tick()
      const kept = await database.query<{ n: string }>(
        'select block_number::text as n from chain_blocks where consumer = $1 order by block_number',
        [consumer.name],
      )
      assert.deepEqual(
        kept.map((r) => BigInt(r.n)),
        [cursor - 2n, cursor - 1n, cursor],
      )
    })

    it('reports direct native transfers to a watched address with a successful receipt', async () => {
      const watched = anvilAccount(8).address
      const consumer = createRecordingConsumer(database, `c${++seq}`, { nativeTo: [watched, token] })
      const scanner = newScanner(consumer, { confirmations: 0, startBlock: (await blockNumber(anvil)) + 1n })
      const wallet = walletFor(anvil)
      const sent = await receiptOf(wallet, wallet.sendTransaction({ to: watched, value: parseEther('1.5') }))
      await receiptOf(wallet, wallet.sendTransaction({ to: anvilAccount(7).address, value: parseEther('2') }))
      // Value sent to a contract that does not accept it: mined, reverted, nothing arrives.
      const reverted = await receiptOf(
        wallet,
        wallet.sendTransaction({ to: token, value: 5n, gas: 100_000n }),
      )
      assert.equal(reverted.status, 'reverted')
      await scanner.tick()
      const records = await consumer.records()
      assert.deepEqual(
        records.map((r) => [r.kind, r.txHash, r.to, r.value]),
        [['native', sent.transactionHash, watched.toLowerCase(), parseEther('1.5')]],
      )
    })

    it("with confirmations 'finalized', delivers once the node calls the block finalized", async () => {
      const { consumer, scanner } = await setup({ confirmations: 'finalized' })
      await pay(5n)
      // anvil finalizes the block 64 below its head.
      await mine(anvil, 63)
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [])
      await mine(anvil, 1)
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [5n])
    })

    it('the loop retries while the RPC is down and catches up when it is back', async () => {
      const proxy = await startRpcProxy(anvil.rpcUrl)
      const { consumer, scanner } = await setup({
        confirmations: 0,
        clients: createRpcClients([proxy.url]),
        backoffMaxMs: 50,
      })
      try {
        await scanner.tick()
        proxy.setDown(true)
        scanner.start()
        await pay(7n)
        await waitFor('the loop to have failed a few times', () => proxy.refusedConnections >= 3)
        assert.deepEqual(await amounts(consumer), [])
        proxy.setDown(false)
        await waitFor('the payment after the outage', async () => (await amounts(consumer)).length === 1)
        assert.deepEqual(await amounts(consumer), [7n])
      } finally {
        await scanner.stop()
        await proxy.stop()
      }
    })

    it('runs as a loop that wake() hurries and stop() ends, and exports its lag', async () => {
      const metrics = createMetrics(async () => [])
      // A poll interval far beyond the wait below: only wake() can make the loop look again in time.
      const { consumer, scanner } = await setup({
        confirmations: 1,
        network: 'anvil',
        metrics,
        pollIntervalMs: 600_000,
      })
      scanner.start()
      try {
        await pay(42n)
        await mine(anvil, 1)
        scanner.wake()
        await waitFor('the payment to be applied', async () => (await amounts(consumer)).length === 1)
      } finally {
        await scanner.stop()
      }
      const text = await metrics.registry.getSingleMetricAsString('berth_chain_cursor_lag_blocks')
      assert.match(
        text,
        new RegExp(`berth_chain_cursor_lag_blocks\\{network="anvil",consumer="${consumer.name}"\\} 1`),
      )
    })
  })
}

describe('readAgreed', () => {
  let a: Anvil
  let b: Anvil
  before(async () => {
    // The same chain id, different histories: a fork, or an RPC serving another chain.
    ;[a, b] = await Promise.all([startAnvil({ chainId: 31337 }), startAnvil({ chainId: 31337 })])
    const wallet = walletFor(b)
    await receiptOf(wallet, wallet.sendTransaction({ to: treasury, value: 1n }))
    await mine(a, 3)
    await mine(b, 5)
  })
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()])
  })

  it('answers when the RPCs agree and throws RpcDisagreementError when they do not', async () => {
    const clients = createRpcClients([a.rpcUrl, b.rpcUrl])
    assert.equal(await readAgreed(clients, (c) => c.getChainId()), 31337)
    await assert.rejects(
      readAgreed(clients, (c) => c.getBlockNumber({ cacheTime: 0 })),
      (error: unknown) => error instanceof RpcDisagreementError && error.answers.length === 2,
    )
    const hashes = (c: PublicClient) => c.getBlock({ blockNumber: 1n }).then((block) => block.hash as Hex)
    await assert.rejects(readAgreed(clients, hashes), RpcDisagreementError)
    assert.equal(await publicClientFor(a).getChainId(), await publicClientFor(b).getChainId())
  })

  it('refuses to scan through an endpoint of another chain', async () => {
    const database = await openTestDatabase('postgres')
    try {
      const scanner = new ChainScanner({
        chainId: 1,
        clients: createRpcClients([a.rpcUrl]),
        confirmations: 0,
        pollIntervalMs: 20,
        maxBlockRange: 100,
        consumer: createRecordingConsumer(database, 'wrong-chain', {}),
        db: database.db,
      })
      await assert.rejects(scanner.tick(), /serve chain 31337, not 1/)
    } finally {
      await database.dispose()
    }
  })

  it('keeps a scanner from applying anything while its RPCs disagree', async () => {
    const database = await openTestDatabase('postgres')
    try {
      await createRecordingTables(database)
      const consumer = createRecordingConsumer(database, 'disagree', { nativeTo: [treasury] })
      const scanner = new ChainScanner({
        chainId: 31337,
        clients: createRpcClients([a.rpcUrl, b.rpcUrl]),
        confirmations: 0,
        pollIntervalMs: 20,
        maxBlockRange: 100,
        startBlock: 0n,
        consumer,
        db: database.db,
      })
      await assert.rejects(scanner.tick(), RpcDisagreementError)
      assert.deepEqual(await consumer.batches(), [], 'nothing applied')
      assert.deepEqual(await consumer.records(), [])
    } finally {
      await database.dispose()
    }
  })
})
