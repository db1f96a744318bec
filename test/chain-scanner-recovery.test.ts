import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createRpcClients } from '../src/chain/rpc.ts'
import { createMetrics } from '../src/metrics/registry.ts'
import { blockNumber, mine } from './helpers/anvil.ts'
import { TRANSFER, useChainScannerFixture } from './helpers/chain-scanner-fixture.ts'
import { databaseKinds } from './helpers/db.ts'
import { createRecordingConsumer, type RecordingConsumer } from './helpers/recording-consumer.ts'
import { type RpcProxy, startRpcProxy } from './helpers/rpc-proxy.ts'
import { waitFor } from './helpers/wait.ts'

// The chain cursor through failures, on a real anvil node and both databases, seen through a
// consumer that writes what it is handed to tables: a consumer that fails, an RPC that refuses
// wide ranges or goes down, a restarted process, two scanners racing, and the polling loop.

for (const kind of databaseKinds) {
  describe(`chain scanner (${kind})`, () => {
    const fx = useChainScannerFixture(kind)
    const { setup, newScanner, pay, amounts, assertContiguous } = fx

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
      await assertContiguous(consumer, startBlock, await blockNumber(fx.anvil))
    })

    it('splits ranges the RPC refuses, and resumes from the cursor after the RPC went down', async () => {
      const proxy: RpcProxy = await startRpcProxy(fx.anvil.rpcUrl)
      try {
        const consumer = createRecordingConsumer(fx.database, fx.consumerName(), {
          logs: [{ address: [fx.token], topics: [TRANSFER] }],
        })
        const startBlock = (await blockNumber(fx.anvil)) + 1n
        const paid: bigint[] = []
        for (let i = 1n; i <= 12n; i++) {
          await pay(i)
          paid.push(i)
          await mine(fx.anvil, 6)
        }
        const last = await blockNumber(fx.anvil)
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
      await mine(fx.anvil, 1)
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [1n, 2n])
      await pay(3n)
      await mine(fx.anvil, 1)
      // A fresh process: its start block is ignored, the stored cursor decides.
      const restarted = newScanner(consumer, { confirmations: 1, startBlock: 0n })
      await restarted.tick()
      assert.deepEqual(await amounts(consumer), [1n, 2n, 3n])
      await assertContiguous(consumer, startBlock, (await blockNumber(fx.anvil)) - 1n)
    })

    it('two scanners of one consumer racing each other apply every range once', async () => {
      const { consumer, startBlock } = await setup()
      const paid: bigint[] = []
      for (let i = 1n; i <= 6n; i++) {
        await pay(i * 10n)
        paid.push(i * 10n)
        await mine(fx.anvil, 2)
      }
      // Two processes' scanners: separate objects, separate transactions on the same rows.
      const options = { confirmations: 0, maxBlockRange: 2, startBlock }
      const [one, two] = [newScanner(consumer, options), newScanner(consumer, options)]
      const last = await blockNumber(fx.anvil)
      await waitFor('both scanners to reach the head', async () => {
        const [a, b] = await Promise.all([one.tick(), two.tick()])
        return a.cursor === last && b.cursor === last
      })
      assert.deepEqual(await amounts(consumer), paid)
      await assertContiguous(consumer, startBlock, last)
    })

    it('the loop retries while the RPC is down and catches up when it is back', async () => {
      const proxy = await startRpcProxy(fx.anvil.rpcUrl)
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
        await mine(fx.anvil, 1)
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
