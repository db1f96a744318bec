import assert from 'node:assert/strict'
import { after, before, beforeEach, describe, test } from 'node:test'
import { sql } from 'drizzle-orm'
import { pino } from 'pino'
import { queryRows } from '../src/db/client.ts'
import { systemSource } from '../src/domain/actor.ts'
import { createMetrics } from '../src/metrics/registry.ts'
import { balanceOf, ledgerImbalance } from '../src/payments/ledger.ts'
import { createPayments, type Payments } from '../src/payments/payments.ts'
import { anvilAccount, blockNumber, mine, reorg } from './helpers/anvil.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { PAYER, type PaymentChains, startPaymentChains } from './helpers/payments-fixture.ts'
import { type RpcProxy, startRpcProxy } from './helpers/rpc-proxy.ts'
import { createAccount, createStack, type Stack } from './helpers/stack.ts'

// The treasury watcher on anvil: transfers from known wallets are credited without a hash at the
// confirmation depth, reorgs before the depth credit nothing, reorgs after it are reversed, and an
// RPC outage mid-scan skips and doubles nothing. The ledger balances after every case.

const CONFIRMATIONS = 3

let chains: PaymentChains
before(async () => {
  chains = await startPaymentChains()
})
after(async () => {
  await chains.stop()
})

for (const kind of databaseKinds) {
  describe(`payments watcher (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let proxy: RpcProxy
    let payments: Payments
    let accountId: string

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database, { start: false })
      proxy = await startRpcProxy(chains.a.rpcUrl)
    })
    beforeEach(async () => {
      // Every case starts from a fresh cursor at the current head and a fresh account.
      await database.db.execute(sql`delete from chain_blocks`)
      await database.db.execute(sql`delete from chain_cursors`)
      await database.db.execute(sql`update accounts set address = null where address is not null`)
      accountId = await createAccount(database, anvilAccount(PAYER).address.toLowerCase())
      payments = await createPayments({
        database,
        store: stack.store,
        events: stack.events,
        config: {
          ...stack.config,
          networks: chains.networks({ confirmations: CONFIRMATIONS, maxBlockRange: 4, rpcUrlA: proxy.url }),
        },
        metrics: createMetrics(async () => []),
        logger: pino({ level: 'silent' }),
      })
      await watcherA().tick()
    })
    after(async () => {
      await proxy.stop()
      await stack.stop()
      await database.dispose()
    })

    const watcherA = () => payments.watchers.find((w) => w.scanner.consumer && w === payments.watchers[0])!
    const available = async () => (await balanceOf(database.db, accountId)).available
    const assertBalanced = async () => {
      const { total, unbalancedJournals } = await ledgerImbalance(database.db)
      assert.equal(total, 0n)
      assert.deepEqual(unbalancedJournals, [])
    }
    /** Ticks once per new block, so a credit shows the first moment it is allowed. */
    const mineAndTick = async (blocks: number) => {
      for (let i = 0; i < blocks; i++) {
        await mine(chains.a, 1)
        await watcherA().tick()
      }
    }

    test('a transfer from a known wallet pays its open order at the depth, with no hash submitted', async () => {
      const order = await payments.orders.quote(
        accountId,
        {
          creditsMicroUsd: 3_000_000n,
          chainId: chains.a.chainId,
          token: 'USDC',
        },
        systemSource('test'),
      )
      await chains.payToken(chains.a, chains.tokens.usdc, BigInt(order.amount))
      await watcherA().tick()
      await mineAndTick(CONFIRMATIONS - 1)
      assert.equal(await available(), 0n, 'not credited before the depth')
      await mineAndTick(1)
      assert.equal(await available(), 3_000_000n)
      const paid = await payments.orders.get(accountId, order.orderId)
      assert.equal(paid.status, 'success')
      assert.equal(paid.payments.length, 1)
      await mineAndTick(5)
      assert.equal(await available(), 3_000_000n, 'credited once')
      await assertBalanced()
    })

    for (const depth of [1, 2, CONFIRMATIONS]) {
      test(`a payment reorged away at depth ${depth} (before the confirmation depth) is never credited`, async () => {
        await chains.payToken(chains.a, chains.tokens.usdc, 1_000_000n)
        await watcherA().tick()
        await mineAndTick(depth - 1)
        await reorg(chains.a, depth)
        await mineAndTick(CONFIRMATIONS + 2)
        assert.equal(await available(), 0n)
        const rows = await queryRows(
          database.db,
          sql`select id from chain_payments where account_id = ${accountId}`,
        )
        assert.equal(rows.length, 0)
        await assertBalanced()
      })
    }

    for (const depth of [CONFIRMATIONS + 1, CONFIRMATIONS + 2]) {
      test(`a payment reorged away at depth ${depth} (after crediting) is reversed with an incident`, async () => {
        await chains.payToken(chains.a, chains.tokens.usdc, 2_000_000n)
        await watcherA().tick()
        await mineAndTick(depth - 1)
        assert.equal(await available(), 2_000_000n, 'credited at the depth')
        await reorg(chains.a, depth)
        await watcherA().tick()
        assert.equal(await available(), 0n, 'the credit is reversed')
        const journals = await queryRows<{ cause: string }>(
          database.db,
          sql`select cause from ledger_journals where account_id = ${accountId} order by created_at`,
        )
        assert.deepEqual(
          journals.map((j) => j.cause),
          ['payment', 'reversal'],
        )
        const incidents = await queryRows(
          database.db,
          sql`select id from billing_events where account_id = ${accountId} and type = 'payment_reversed'`,
        )
        assert.equal(incidents.length, 1)
        await mineAndTick(CONFIRMATIONS + 1)
        assert.equal(await available(), 0n, 'nothing credited again from the orphaned block')
        await assertBalanced()
      })
    }

    test('the RPC going down mid-scan resumes from the cursor: nothing skipped, nothing doubled', async () => {
      const start = await blockNumber(chains.a)
      let sent = 0n
      for (let i = 0; i < 6; i++) {
        await chains.payToken(chains.a, chains.tokens.usdc, 100_000n + BigInt(i))
        sent += 100_000n + BigInt(i)
        await mine(chains.a, 2)
      }
      await mine(chains.a, CONFIRMATIONS)
      assert.ok((await blockNumber(chains.a)) - start > 12n)
      // Ranges of at most 4 blocks: the outage hits after a few of them.
      proxy.downAfter(12)
      await assert.rejects(watcherA().tick())
      const partial = await available()
      assert.ok(partial < sent, 'the outage stopped the scan part way')
      proxy.setDown(false)
      await watcherA().tick()
      assert.equal(await available(), sent, 'every transfer credited exactly once')
      const rows = await queryRows<{ n: number }>(
        database.db,
        sql`select count(*)::int as n from chain_payments where account_id = ${accountId} and status = 'credited'`,
      )
      assert.equal(rows[0]!.n, 6)
      await assertBalanced()
    })
  })
}
