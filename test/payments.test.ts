import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { pino } from 'pino'
import type { Hex } from 'viem'
import type { NetworkConfig } from '../src/config/payments-schema.ts'
import { systemSource } from '../src/domain/actor.ts'
import { BerthError } from '../src/domain/errors.ts'
import { deploymentSpecSchema } from '../src/domain/spec.ts'
import { createMetrics } from '../src/metrics/registry.ts'
import { balanceOf, ledgerImbalance } from '../src/payments/ledger.ts'
import { formatE18, parseUsdE18, tokenToMicroUsd } from '../src/payments/money.ts'
import { createPayments, type Payments } from '../src/payments/payments.ts'
import { anvilAccount, mine, startAnvil } from './helpers/anvil.ts'
import { auditLines } from './helpers/audit.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { PAYER, type PaymentChains, STRANGER, startPaymentChains } from './helpers/payments-fixture.ts'
import { createAccount, createStack, type Stack } from './helpers/stack.ts'

// Quotes and payments submitted by hash, verified against two real anvil chains: exactly-once
// crediting under concurrent submission, the confirmation depth, under- and overpayment, and
// every kind of wrong payment, with the ledger balanced after each.

let chains: PaymentChains
before(async () => {
  chains = await startPaymentChains()
})
after(async () => {
  await chains.stop()
})

for (const kind of databaseKinds) {
  describe(`payments by hash (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let payments: Payments
    let accountId: string
    const payer = anvilAccount(PAYER).address.toLowerCase()

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database, { start: false })
      payments = await paymentsWith()
      accountId = await createAccount(database, payer)
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    /** The payments service on this test's database: the fixture's networks unless told otherwise. */
    const paymentsWith = (options: { networks?: NetworkConfig[]; now?: () => Date } = {}) =>
      createPayments({
        database,
        store: stack.store,
        events: stack.events,
        config: { ...stack.config, networks: options.networks ?? chains.networks() },
        metrics: createMetrics(async () => []),
        logger: pino({ level: 'silent' }),
        ...(options.now ? { now: options.now } : {}),
      })
    const assertBalanced = async () => {
      const { total, unbalancedJournals } = await ledgerImbalance(database.db)
      assert.equal(total, 0n)
      assert.deepEqual(unbalancedJournals, [])
    }
    const available = async () => (await balanceOf(database.db, accountId)).available
    const quoteFor = (credits: bigint, token = 'USDC', chainId = chains.a.chainId) =>
      payments.orders.quote(accountId, { creditsMicroUsd: credits, chainId, token }, systemSource('test'))
    const rejects = async (promise: Promise<unknown>, pattern: RegExp) => {
      await assert.rejects(promise, (error: unknown) => {
        assert.ok(error instanceof BerthError, String(error))
        assert.match(error.message, pattern)
        return true
      })
    }

    test('a quote asks for the credits plus the buffer; paying it is credited only at the depth, once', async () => {
      const order = await quoteFor(5_000_000n)
      assert.equal(order.status, 'init')
      assert.equal(order.payTo, chains.networks()[0]!.treasury)
      // 2% buffer: $5 of USDC at $1 asks for 5.1 USDC (rounded up).
      assert.equal(order.amount, '5100001')
      const before = await available()
      const hash = await chains.payToken(chains.a, chains.tokens.usdc, BigInt(order.amount))

      const early = await payments.orders.submitPayment(accountId, order.orderId, hash, systemSource('test'))
      assert.equal(early.status, 'processing')
      assert.equal(early.payments[0]?.status, 'pending')
      assert.equal(await available(), before, 'nothing credited before the confirmation depth')

      await mine(chains.a, 3)
      const results = await Promise.all(
        Array.from({ length: 20 }, () =>
          payments.orders.submitPayment(accountId, order.orderId, hash, systemSource('test')),
        ),
      )
      assert.equal(
        results.filter((r) => r.payment === 'credited').length,
        1,
        'exactly one submission credits',
      )
      const paid = await payments.orders.get(accountId, order.orderId)
      assert.equal(paid.status, 'success')
      assert.equal(paid.received, order.amount, 'exact to the base unit')
      assert.equal(paid.shortfall, '0')
      assert.equal((await available()) - before, 5_000_000n)
      await assertBalanced()
      // The audit log has the order and one credit, made by the chain's transaction.
      const lines = await auditLines(database, accountId)
      assert.ok(lines.includes('system:test order.create'))
      assert.deepEqual(
        lines.filter((l) => l.endsWith('payment.credit')),
        [`chain:${hash} payment.credit`],
      )
    })

    test('each payment submitted 1 to 20 times at once is credited once, exact to the wei', async () => {
      await mine(chains.a, 1)
      for (const times of [1, 2, 7, 20]) {
        const order = await quoteFor(1_000_000n, 'ETH')
        const hash = await chains.payNative(chains.a, BigInt(order.amount))
        await mine(chains.a, 3)
        const before = await available()
        const results = await Promise.all(
          Array.from({ length: times }, () =>
            payments.orders.submitPayment(accountId, order.orderId, hash, systemSource('test')),
          ),
        )
        assert.equal(results.filter((r) => r.payment === 'credited').length, 1)
        const paid = await payments.orders.get(accountId, order.orderId)
        assert.equal(paid.received, order.amount)
        assert.equal(paid.status, 'success')
        assert.ok((await available()) - before >= 1_000_000n)
      }
      await assertBalanced()
    })

    test('an underpaid order stays processing with its shortfall; what arrived is credited', async () => {
      const order = await quoteFor(2_000_000n)
      const half = BigInt(order.amount) / 2n
      const before = await available()
      const hash = await chains.payToken(chains.a, chains.tokens.usdc, half)
      await mine(chains.a, 3)
      const after = await payments.orders.submitPayment(accountId, order.orderId, hash, systemSource('test'))
      assert.equal(after.status, 'processing')
      assert.equal(after.shortfall, (BigInt(order.amount) - half).toString())
      assert.ok((await available()) - before > 0n)
      await assertBalanced()
    })

    test('an overpaid order succeeds and the surplus goes to the balance', async () => {
      const order = await quoteFor(1_000_000n)
      const before = await available()
      const hash = await chains.payToken(chains.a, chains.tokens.usdc, BigInt(order.amount) * 3n)
      await mine(chains.a, 3)
      const after = await payments.orders.submitPayment(accountId, order.orderId, hash, systemSource('test'))
      assert.equal(after.status, 'success')
      assert.ok((await available()) - before >= 3_000_000n)
      await assertBalanced()
    })

    test('within its quote an order is valued at the quoted rate up to its amount, the surplus at the lower rate', async () => {
      const order = await quoteFor(1_000_000n, 'ETH')
      const quoted = parseUsdE18(order.rate)
      // The market drops while the quote still holds; the payer sends twice what was asked.
      await chains.setEthPrice(2000_00000000n)
      try {
        const before = await available()
        const hash = await chains.payNative(chains.a, BigInt(order.amount) * 2n)
        await mine(chains.a, 3)
        const paid = await payments.orders.submitPayment(accountId, order.orderId, hash, systemSource('test'))
        assert.equal(paid.status, 'success')
        const expected =
          tokenToMicroUsd(BigInt(order.amount), 18, quoted) +
          tokenToMicroUsd(BigInt(order.amount), 18, parseUsdE18('2000'))
        assert.equal((await available()) - before, expected)
        assert.ok(
          expected < tokenToMicroUsd(BigInt(order.amount) * 2n, 18, quoted),
          'less than all at the quote',
        )
        await assertBalanced()
      } finally {
        await chains.setEthPrice(3000_00000000n)
      }
    })

    test('a transaction that paid one order, submitted for another, is refused naming the order it paid', async () => {
      const first = await quoteFor(1_000_000n)
      const second = await quoteFor(1_000_000n)
      const hash = await chains.payToken(chains.a, chains.tokens.usdc, BigInt(first.amount))
      await mine(chains.a, 3)
      assert.equal(
        (await payments.orders.submitPayment(accountId, first.orderId, hash, systemSource('test'))).status,
        'success',
      )
      const before = await available()
      await assert.rejects(
        payments.orders.submitPayment(accountId, second.orderId, hash, systemSource('test')),
        (error: unknown) => {
          assert.ok(error instanceof BerthError)
          assert.equal(error.code, 'conflict')
          assert.match(error.message, new RegExp(`already paid order ${first.orderId}`))
          return true
        },
      )
      assert.equal((await payments.orders.get(accountId, second.orderId)).status, 'init')
      assert.equal(await available(), before)
      // The same order again is fine: submitting twice changes nothing.
      assert.equal(
        (await payments.orders.submitPayment(accountId, first.orderId, hash, systemSource('test'))).status,
        'success',
      )
    })

    test('wrong chain, wrong token, a foreign payer, a failed transfer and a phantom transfer are refused', async () => {
      const order = await quoteFor(1_000_000n)
      const before = await available()

      const onB = await chains.payToken(chains.b, chains.tokens.usdt, 1_000_000n)
      await mine(chains.b, 3)
      await rejects(
        payments.orders.submitPayment(accountId, order.orderId, onB, systemSource('test')),
        /wrong chain: .* is on chain 31338/,
      )

      const otherToken = await chains.payToken(chains.a, chains.tokens.fee, 1_000_000n)
      const stranger = await chains.payToken(chains.a, chains.tokens.usdc, 2_000_000n, STRANGER)
      const falsy = await chains.payToken(chains.a, chains.tokens.falsy, 2_000_000n)
      await mine(chains.a, 3)
      await rejects(
        payments.orders.submitPayment(accountId, order.orderId, otherToken, systemSource('test')),
        /wrong token: .* paid FUSD/,
      )
      await rejects(
        payments.orders.submitPayment(accountId, order.orderId, stranger, systemSource('test')),
        /is not your wallet/,
      )
      await rejects(
        payments.orders.submitPayment(accountId, order.orderId, falsy, systemSource('test')),
        /sends no USDC to the treasury/,
      )

      const phantomOrder = await quoteFor(1_000_000n, 'PUSD')
      const phantom = await chains.payToken(chains.a, chains.tokens.phantom, BigInt(phantomOrder.amount))
      await mine(chains.a, 3)
      await rejects(
        payments.orders.submitPayment(accountId, phantomOrder.orderId, phantom, systemSource('test')),
        /balance did not grow/,
      )

      const unknown = `0x${'12'.repeat(32)}` as Hex
      await rejects(
        payments.orders.submitPayment(accountId, order.orderId, unknown, systemSource('test')),
        /not found/,
      )
      assert.equal(await available(), before, 'nothing credited')
      assert.equal((await payments.orders.get(accountId, order.orderId)).status, 'init')
      await assertBalanced()
    })

    test('a fee-on-transfer token is credited only what reached the treasury', async () => {
      const order = await quoteFor(10_000_000n, 'FUSD')
      const before = await available()
      const hash = await chains.payToken(chains.a, chains.tokens.fee, BigInt(order.amount))
      await mine(chains.a, 3)
      const after = await payments.orders.submitPayment(accountId, order.orderId, hash, systemSource('test'))
      // The token keeps 1% (rounded down) of every transfer.
      const arrived = BigInt(order.amount) - BigInt(order.amount) / 100n
      assert.equal(after.received, arrived.toString())
      assert.equal(after.status, 'processing')
      const credited = (await available()) - before
      assert.ok(credited < 10_000_000n && credited >= 9_800_000n, `credited ${credited}`)
      await assertBalanced()
    })

    test('a payment confirmed after its quote expired is credited at the price then, never the stale one', async () => {
      // Quoted an hour ago (an injected clock), so the quote has long expired when the payment lands.
      const anHourAgo = await paymentsWith({ now: () => new Date(Date.now() - 3600_000) })
      const order = await anHourAgo.orders.quote(
        accountId,
        {
          creditsMicroUsd: 1_000_000n,
          chainId: chains.a.chainId,
          token: 'ETH',
        },
        systemSource('test'),
      )
      assert.equal(order.rate, formatE18((parseUsdE18('3000') * 10_000n) / 10_200n))
      await chains.setEthPrice(2000_00000000n)
      try {
        const before = await available()
        const hash = await chains.payNative(chains.a, BigInt(order.amount))
        await mine(chains.a, 3)
        const paid = await payments.orders.submitPayment(accountId, order.orderId, hash, systemSource('test'))
        assert.equal(paid.payment, 'credited')
        assert.equal(
          (await available()) - before,
          tokenToMicroUsd(BigInt(order.amount), 18, parseUsdE18('2000')),
        )
        assert.equal(paid.status, 'success', 'the quoted amount arrived')
        await assertBalanced()
      } finally {
        await chains.setEthPrice(3000_00000000n)
      }
    })

    test('paying a deployment for some hours holds that much for it and sets paidUntil; a later order extends it', async () => {
      const { row } = await stack.store.create({
        source: systemSource('test'),
        ownerId: accountId,
        spec: deploymentSpecSchema.parse({ name: `prepaid-${kind}`, image: 'app:1' }),
        provider: 'simulated',
      })
      const billing = async () => payments.balances.deploymentBilling(row.id, 0n)
      const payFor = async (hours: number) => {
        const order = await payments.orders.quote(
          accountId,
          {
            deploymentId: row.id,
            hours,
            chainId: chains.b.chainId,
            token: 'USDT',
          },
          systemSource('test'),
        )
        const hash = await chains.payToken(chains.b, chains.tokens.usdt, BigInt(order.amount))
        await mine(chains.b, 3)
        const paid = await payments.orders.submitPayment(accountId, order.orderId, hash, systemSource('test'))
        assert.equal(paid.status, 'success')
        return BigInt(order.valueMicroUsd)
      }
      const started = Date.now()
      const firstValue = await payFor(2)
      const first = await billing()
      assert.equal(BigInt(first.heldMicroUsd), firstValue)
      const paidUntil = Date.parse(first.paidUntil!)
      assert.ok(paidUntil >= started + 2 * 3600_000 && paidUntil < Date.now() + 2 * 3600_000 + 1000)
      const secondValue = await payFor(3)
      const second = await billing()
      assert.equal(BigInt(second.heldMicroUsd), firstValue + secondValue)
      assert.equal(Date.parse(second.paidUntil!), paidUntil + 3 * 3600_000, 'extended from the previous end')
      await assertBalanced()
    })

    test('with two RPC endpoints that disagree, a payment is not credited and the answer says why', async () => {
      // A second node with the same chain id that never saw the payment: the endpoints disagree.
      const other = await startAnvil({ chainId: chains.a.chainId })
      try {
        const [network, ...rest] = chains.networks()
        const twoRpcs = await paymentsWith({
          networks: [{ ...network!, rpcUrls: [chains.a.rpcUrl, other.rpcUrl] }, ...rest],
        })
        const order = await twoRpcs.orders.quote(
          accountId,
          {
            creditsMicroUsd: 1_000_000n,
            chainId: chains.a.chainId,
            token: 'USDC',
          },
          systemSource('test'),
        )
        const hash = await chains.payToken(chains.a, chains.tokens.usdc, BigInt(order.amount))
        await mine(chains.a, 3)
        const before = await available()
        await assert.rejects(
          twoRpcs.orders.submitPayment(accountId, order.orderId, hash, systemSource('test')),
          (error: unknown) => {
            assert.ok(error instanceof BerthError && error.code === 'provider_unavailable', String(error))
            assert.match(error.message, /RPC endpoints disagree/)
            return true
          },
        )
        assert.equal(await available(), before)
      } finally {
        await other.stop()
      }
    })

    test('an order whose payment was seen but had not arrived by its deadline fails; the late payment still counts', async () => {
      const anHourAgo = await paymentsWith({ now: () => new Date(Date.now() - 3600_000) })
      const order = await anHourAgo.orders.quote(
        accountId,
        {
          creditsMicroUsd: 1_000_000n,
          chainId: chains.b.chainId,
          token: 'USDT',
        },
        systemSource('test'),
      )
      const hash = await chains.payToken(chains.b, chains.tokens.usdt, BigInt(order.amount))
      const seen = await anHourAgo.orders.submitPayment(accountId, order.orderId, hash, systemSource('test'))
      assert.equal(seen.status, 'processing', 'seen, not yet at the depth')
      assert.equal(
        (await payments.orders.get(accountId, order.orderId)).status,
        'fail',
        'past its deadline with nothing arrived',
      )
      await mine(chains.b, 3)
      const late = await payments.orders.submitPayment(accountId, order.orderId, hash, systemSource('test'))
      assert.equal(late.payment, 'credited')
      assert.equal(late.status, 'success')
      await assertBalanced()
    })

    test('a quote for a deployment prices its resources for the hours asked', async () => {
      const { row } = await stack.store.create({
        source: systemSource('test'),
        ownerId: accountId,
        spec: {
          ...(await import('../src/domain/spec.ts')).deploymentSpecSchema.parse({
            name: `q-${kind}`,
            image: 'app:1',
          }),
        },
        provider: 'simulated',
      })
      const order = await payments.orders.quote(
        accountId,
        {
          deploymentId: row.id,
          hours: 10,
          chainId: chains.b.chainId,
          token: 'usdt',
        },
        systemSource('test'),
      )
      assert.equal(order.hours, 10)
      assert.equal(order.deploymentId, row.id)
      assert.ok(BigInt(order.valueMicroUsd) > 0n)
      await rejects(
        payments.orders.quote(
          accountId,
          { creditsMicroUsd: 1n, chainId: 999, token: 'USDC' },
          systemSource('test'),
        ),
        /chain 999 is not accepted/,
      )
      await rejects(
        payments.orders.quote(
          accountId,
          { creditsMicroUsd: 1n, chainId: chains.a.chainId, token: 'DOGE' },
          systemSource('test'),
        ),
        /token DOGE is not accepted/,
      )
    })
  })
}
