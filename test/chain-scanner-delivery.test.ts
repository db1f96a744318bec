import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { encodeFunctionData, parseEther } from 'viem'
import { ReorgTooDeepError } from '../src/chain/scanner.ts'
import { anvilAccount, blockNumber, mine, reorg, revert, snapshot, walletFor } from './helpers/anvil.ts'
import { payer, treasury, useChainScannerFixture } from './helpers/chain-scanner-fixture.ts'
import { erc20Abi, receiptOf } from './helpers/contracts.ts'
import { databaseKinds } from './helpers/db.ts'
import { createRecordingConsumer } from './helpers/recording-consumer.ts'

// What the chain cursor delivers and when, on a real anvil node and both databases, seen through
// a consumer that writes what it is handed to tables (what it ends up holding is what payments
// would have credited): logs and native transfers once, after the confirmation depth or
// finality, only the canonical ones across reorgs, and how far back it can walk.

for (const kind of databaseKinds) {
  describe(`chain scanner (${kind})`, () => {
    const fx = useChainScannerFixture(kind)
    const { setup, newScanner, pay, amounts, assertContiguous } = fx

    it('delivers a log once, and only after the confirmation depth', async () => {
      const { consumer, scanner, startBlock } = await setup({ confirmations: 3 })
      const paidIn = await pay(1_000_000n)
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [], 'not at depth yet')
      await mine(fx.anvil, 2)
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [], 'two confirmations are not three')
      await mine(fx.anvil, 1)
      const result = await scanner.tick()
      assert.equal(result.cursor, paidIn)
      assert.deepEqual(await amounts(consumer), [1_000_000n])
      await mine(fx.anvil, 5)
      await scanner.tick()
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [1_000_000n], 'delivered once')
      await assertContiguous(consumer, startBlock, (await blockNumber(fx.anvil)) - 3n)
      assert.equal(scanner.lag, 3n)
    })

    it('sees only the canonical log after a reorg shallower than the depth, without onReorg', async () => {
      const { consumer, scanner } = await setup({ confirmations: 5 })
      const paidIn = await pay(1_111n)
      await mine(fx.anvil, 1)
      await scanner.tick()
      // The block with the payment is replaced by one where the payer sent another amount.
      const data = encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [treasury, 2_222n] })
      await reorg(fx.anvil, 2, [{ tx: { from: payer, to: fx.token, data, gas: '0x30000' }, blockOffset: 0 }])
      await mine(fx.anvil, 5)
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
      await mine(fx.anvil, 2)
      await scanner.tick()
      const second = await pay(200n)
      await mine(fx.anvil, 2)
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [100n, 200n])
      // Replace the second payment's block and the two after it; the payment moves one block later.
      const data = encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [treasury, 201n] })
      await reorg(fx.anvil, 3, [{ tx: { from: payer, to: fx.token, data, gas: '0x30000' }, blockOffset: 1 }])
      const result = await scanner.tick()
      assert.equal(result.rewoundTo, first, 'back to the newest applied block still canonical')
      assert.deepEqual(await consumer.reorgs(), [first + 1n])
      assert.deepEqual(await amounts(consumer), [100n], 'the moved payment is not confirmed yet')
      await mine(fx.anvil, 1)
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
      const before = await snapshot(fx.anvil)
      await pay(300n)
      await mine(fx.anvil, 2)
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [300n])
      await revert(fx.anvil, before)
      const result = await scanner.tick()
      assert.ok(result.rewoundTo !== undefined && result.rewoundTo <= (await blockNumber(fx.anvil)))
      assert.deepEqual(await amounts(consumer), [], 'the payment is gone with its block')
      await pay(301n)
      await mine(fx.anvil, 2)
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [301n])
    })

    it('stops with ReorgTooDeepError, changing nothing, when no kept position is canonical', async () => {
      const { consumer, scanner } = await setup({ confirmations: 1, maxBlockRange: 1, keepBlocks: 1 })
      await pay(400n)
      await mine(fx.anvil, 1)
      const { cursor } = await scanner.tick()
      await reorg(fx.anvil, 3)
      await assert.rejects(scanner.tick(), ReorgTooDeepError)
      assert.deepEqual(await amounts(consumer), [400n])
      assert.deepEqual(await consumer.reorgs(), [])
      const [row] = await fx.database.query<{ n: string }>(
        'select block_number::text as n from chain_cursors where consumer = $1',
        [consumer.name],
      )
      assert.equal(BigInt(row!.n), cursor)
    })

    it('keeps only the newest keepBlocks positions for walking back', async () => {
      const { consumer, scanner } = await setup({ confirmations: 0, maxBlockRange: 1, keepBlocks: 3 })
      await mine(fx.anvil, 10)
      const { cursor } = await scanner.tick()
      const kept = await fx.database.query<{ n: string }>(
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
      const consumer = createRecordingConsumer(fx.database, fx.consumerName(), {
        nativeTo: [watched, fx.token],
      })
      const scanner = newScanner(consumer, {
        confirmations: 0,
        startBlock: (await blockNumber(fx.anvil)) + 1n,
      })
      const wallet = walletFor(fx.anvil)
      const sent = await receiptOf(wallet, wallet.sendTransaction({ to: watched, value: parseEther('1.5') }))
      await receiptOf(wallet, wallet.sendTransaction({ to: anvilAccount(7).address, value: parseEther('2') }))
      // Value sent to a contract that does not accept it: mined, reverted, nothing arrives.
      const reverted = await receiptOf(
        wallet,
        wallet.sendTransaction({ to: fx.token, value: 5n, gas: 100_000n }),
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
      await mine(fx.anvil, 63)
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [])
      await mine(fx.anvil, 1)
      await scanner.tick()
      assert.deepEqual(await amounts(consumer), [5n])
    })
  })
}
