import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Hex } from 'viem'
import { systemSource } from '../src/domain/actor.ts'
import { BerthError } from '../src/domain/errors.ts'
import { deploymentSpecSchema } from '../src/domain/spec.ts'
import { mine, startAnvil } from './helpers/anvil.ts'
import { databaseKinds } from './helpers/db.ts'
import { type PaymentChains, STRANGER, startPaymentChains } from './helpers/payments-fixture.ts'
import { usePaymentsService } from './helpers/payments-service.ts'

// Quotes and payments submitted by hash, verified against two real anvil chains: which payments
// an order takes. A transaction that paid another order, every kind of wrong payment and RPC
// endpoints that disagree are refused; an order fails at its deadline and a late payment still
// counts; orders for a deployment are priced by its resources and prepay its hours.

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
    const { assertBalanced, available, quoteFor, paymentsWith, rejects } = fx

    test('a transaction that paid one order, submitted for another, is refused naming the order it paid', async () => {
      const first = await quoteFor(1_000_000n)
      const second = await quoteFor(1_000_000n)
      const hash = await chains.payToken(chains.a, chains.tokens.usdc, BigInt(first.amount))
      await mine(chains.a, 3)
      assert.equal(
        (await fx.payments.orders.submitPayment(fx.accountId, first.orderId, hash, systemSource('test')))
          .status,
        'success',
      )
      const before = await available()
      await assert.rejects(
        fx.payments.orders.submitPayment(fx.accountId, second.orderId, hash, systemSource('test')),
        (error: unknown) => {
          assert.ok(error instanceof BerthError)
          assert.equal(error.code, 'conflict')
          assert.match(error.message, new RegExp(`already paid order ${first.orderId}`))
          return true
        },
      )
      assert.equal((await fx.payments.orders.get(fx.accountId, second.orderId)).status, 'init')
      assert.equal(await available(), before)
      // The same order again is fine: submitting twice changes nothing.
      assert.equal(
        (await fx.payments.orders.submitPayment(fx.accountId, first.orderId, hash, systemSource('test')))
          .status,
        'success',
      )
    })

    test('wrong chain, wrong token, a foreign payer, a failed transfer and a phantom transfer are refused', async () => {
      const order = await quoteFor(1_000_000n)
      const before = await available()

      const onB = await chains.payToken(chains.b, chains.tokens.usdt, 1_000_000n)
      await mine(chains.b, 3)
      await rejects(
        fx.payments.orders.submitPayment(fx.accountId, order.orderId, onB, systemSource('test')),
        /wrong chain: .* is on chain 31338/,
      )

      const otherToken = await chains.payToken(chains.a, chains.tokens.fee, 1_000_000n)
      const stranger = await chains.payToken(chains.a, chains.tokens.usdc, 2_000_000n, STRANGER)
      const falsy = await chains.payToken(chains.a, chains.tokens.falsy, 2_000_000n)
      await mine(chains.a, 3)
      await rejects(
        fx.payments.orders.submitPayment(fx.accountId, order.orderId, otherToken, systemSource('test')),
        /wrong token: .* paid FUSD/,
      )
      await rejects(
        fx.payments.orders.submitPayment(fx.accountId, order.orderId, stranger, systemSource('test')),
        /is not your wallet/,
      )
      await rejects(
        fx.payments.orders.submitPayment(fx.accountId, order.orderId, falsy, systemSource('test')),
        /sends no USDC to the treasury/,
      )

      const phantomOrder = await quoteFor(1_000_000n, 'PUSD')
      const phantom = await chains.payToken(chains.a, chains.tokens.phantom, BigInt(phantomOrder.amount))
      await mine(chains.a, 3)
      await rejects(
        fx.payments.orders.submitPayment(fx.accountId, phantomOrder.orderId, phantom, systemSource('test')),
        /balance did not grow/,
      )

      const unknown = `0x${'12'.repeat(32)}` as Hex
      await rejects(
        fx.payments.orders.submitPayment(fx.accountId, order.orderId, unknown, systemSource('test')),
        /not found/,
      )
      assert.equal(await available(), before, 'nothing credited')
      assert.equal((await fx.payments.orders.get(fx.accountId, order.orderId)).status, 'init')
      await assertBalanced()
    })

    test('paying a deployment for some hours holds that much for it and sets paidUntil; a later order extends it', async () => {
      const { row } = await fx.stack.store.create({
        source: systemSource('test'),
        ownerId: fx.accountId,
        spec: deploymentSpecSchema.parse({ name: `prepaid-${kind}`, image: 'app:1' }),
        provider: 'simulated',
      })
      const billing = async () => fx.payments.balances.deploymentBilling(row.id, 0n)
      const payFor = async (hours: number) => {
        const order = await fx.payments.orders.quote(
          fx.accountId,
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
        const paid = await fx.payments.orders.submitPayment(
          fx.accountId,
          order.orderId,
          hash,
          systemSource('test'),
        )
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
          fx.accountId,
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
          twoRpcs.orders.submitPayment(fx.accountId, order.orderId, hash, systemSource('test')),
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
        fx.accountId,
        {
          creditsMicroUsd: 1_000_000n,
          chainId: chains.b.chainId,
          token: 'USDT',
        },
        systemSource('test'),
      )
      const hash = await chains.payToken(chains.b, chains.tokens.usdt, BigInt(order.amount))
      const seen = await anHourAgo.orders.submitPayment(
        fx.accountId,
        order.orderId,
        hash,
        systemSource('test'),
      )
      assert.equal(seen.status, 'processing', 'seen, not yet at the depth')
      assert.equal(
        (await fx.payments.orders.get(fx.accountId, order.orderId)).status,
        'fail',
        'past its deadline with nothing arrived',
      )
      await mine(chains.b, 3)
      const late = await fx.payments.orders.submitPayment(
        fx.accountId,
        order.orderId,
        hash,
        systemSource('test'),
      )
      assert.equal(late.payment, 'credited')
      assert.equal(late.status, 'success')
      await assertBalanced()
    })

    test('a quote for a deployment prices its resources for the hours asked', async () => {
      const { row } = await fx.stack.store.create({
        source: systemSource('test'),
        ownerId: fx.accountId,
        spec: deploymentSpecSchema.parse({ name: `q-${kind}`, image: 'app:1' }),
        provider: 'simulated',
      })
      const order = await fx.payments.orders.quote(
        fx.accountId,
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
        fx.payments.orders.quote(
          fx.accountId,
          { creditsMicroUsd: 1n, chainId: 999, token: 'USDC' },
          systemSource('test'),
        ),
        /chain 999 is not accepted/,
      )
      await rejects(
        fx.payments.orders.quote(
          fx.accountId,
          { creditsMicroUsd: 1n, chainId: chains.a.chainId, token: 'DOGE' },
          systemSource('test'),
        ),
        /token DOGE is not accepted/,
      )
    })
  })
}
