import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { systemSource } from '../src/domain/actor.ts'
import { formatE18, parseUsdE18, tokenToMicroUsd } from '../src/payments/money.ts'
import { mine } from './helpers/anvil.ts'
import { auditLines } from './helpers/audit.ts'
import { databaseKinds } from './helpers/db.ts'
import { type PaymentChains, startPaymentChains } from './helpers/payments-fixture.ts'
import { usePaymentsService } from './helpers/payments-service.ts'

// Quotes and payments submitted by hash, verified against two real anvil chains: what is credited
// and when. Exactly-once crediting under concurrent submission, the confirmation depth, under- and
// overpayment, the quoted and the market rate, a fee-on-transfer token and an expired quote, with
// the ledger balanced after each.

let chains: PaymentChains
before(async () => {
  chains = await startPaymentChains()
})
after(async () => {
  await chains.stop()
})

for (const kind of databaseKinds) {
  describe(`payments by hash (${kind})`, () => {
    const fx = usePaymentsService(() => chains, kind)
    const { assertBalanced, available, quoteFor, paymentsWith } = fx

    test('a quote asks for the credits plus the buffer; paying it is credited only at the depth, once', async () => {
      const order = await quoteFor(5_000_000n)
      assert.equal(order.status, 'init')
      assert.equal(order.payTo, chains.networks()[0]!.treasury)
      // 2% buffer: $5 of USDC at $1 asks for 5.1 USDC (rounded up).
      assert.equal(order.amount, '5100001')
      const before = await available()
      const hash = await chains.payToken(chains.a, chains.tokens.usdc, BigInt(order.amount))

      const early = await fx.payments.orders.submitPayment(
        fx.accountId,
        order.orderId,
        hash,
        systemSource('test'),
      )
      assert.equal(early.status, 'processing')
      assert.equal(early.payments[0]?.status, 'pending')
      assert.equal(await available(), before, 'nothing credited before the confirmation depth')

      await mine(chains.a, 3)
      const results = await Promise.all(
        Array.from({ length: 20 }, () =>
          fx.payments.orders.submitPayment(fx.accountId, order.orderId, hash, systemSource('test')),
        ),
      )
      assert.equal(
        results.filter((r) => r.payment === 'credited').length,
        1,
        'exactly one submission credits',
      )
      const paid = await fx.payments.orders.get(fx.accountId, order.orderId)
      assert.equal(paid.status, 'success')
      assert.equal(paid.received, order.amount, 'exact to the base unit')
      assert.equal(paid.shortfall, '0')
      assert.equal((await available()) - before, 5_000_000n)
      await assertBalanced()
      // The audit log has the order and one credit, made by the chain's transaction.
      const lines = await auditLines(fx.database, fx.accountId)
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
            fx.payments.orders.submitPayment(fx.accountId, order.orderId, hash, systemSource('test')),
          ),
        )
        assert.equal(results.filter((r) => r.payment === 'credited').length, 1)
        const paid = await fx.payments.orders.get(fx.accountId, order.orderId)
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
      const after = await fx.payments.orders.submitPayment(
        fx.accountId,
        order.orderId,
        hash,
        systemSource('test'),
      )
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
      const after = await fx.payments.orders.submitPayment(
        fx.accountId,
        order.orderId,
        hash,
        systemSource('test'),
      )
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
        const paid = await fx.payments.orders.submitPayment(
          fx.accountId,
          order.orderId,
          hash,
          systemSource('test'),
        )
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

    test('a fee-on-transfer token is credited only what reached the treasury', async () => {
      const order = await quoteFor(10_000_000n, 'FUSD')
      const before = await available()
      const hash = await chains.payToken(chains.a, chains.tokens.fee, BigInt(order.amount))
      await mine(chains.a, 3)
      const after = await fx.payments.orders.submitPayment(
        fx.accountId,
        order.orderId,
        hash,
        systemSource('test'),
      )
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
        fx.accountId,
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
        const paid = await fx.payments.orders.submitPayment(
          fx.accountId,
          order.orderId,
          hash,
          systemSource('test'),
        )
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
  })
}
