import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { anvilAccount, anvilPrivateKey, mine } from './helpers/anvil.ts'
import { PAYER, type PaymentChains, startPaymentChains } from './helpers/payments-fixture.ts'
import { promtoolProblems } from './helpers/promtool.ts'
import { api, type RunningBerth, runCli, signIn, startBerth } from './helpers/server.ts'
import { waitFor } from './helpers/wait.ts'

// Payments through a spawned `berth serve` and the `berth` CLI, as a user meets them: a paid
// deployment waits for payment, `berth pay --send` pays from the wallet and follows the
// confirmations, the credit starts the deployment; bad input is refused without writing anything.

const ADMIN = 'admin-token-for-payments-e2e-0123456789'

let chains: PaymentChains
let berth: RunningBerth
let token: string
const payerKey = anvilPrivateKey(PAYER)

before(async () => {
  chains = await startPaymentChains()
  const dir = mkdtempSync(join(tmpdir(), 'berth-pay-'))
  const configFile = join(dir, 'berth.json')
  writeFileSync(
    configFile,
    JSON.stringify({
      payments: { required: true },
      pricing: { billingIntervalSeconds: 60 },
      networks: chains.networks({ confirmations: 2 }),
    }),
  )
  berth = await startBerth({ args: ['--config', configFile], env: { BERTH_ADMIN_TOKEN: ADMIN } })
  token = (await signIn(berth.url, payerKey)).token
})
after(async () => {
  await berth?.stop()
  await chains?.stop()
})

/** Runs the CLI while a miner adds a block every 100 ms, as a live chain would. */
async function runCliWhileMining(args: string[]) {
  const miner = setInterval(() => void mine(chains.a, 1).catch(() => {}), 100)
  try {
    return await runCli(berth.url, args, { BERTH_TOKEN: token, BERTH_PRIVATE_KEY: payerKey })
  } finally {
    clearInterval(miner)
  }
}

describe('payments end to end', () => {
  test('GET /v1/networks lists the accepted chains and tokens', async () => {
    const res = await api(berth.url, token).get<{
      paymentsRequired: boolean
      items: Array<{ chainId: number; tokens: Array<{ symbol: string }> }>
    }>('/v1/networks')
    assert.equal(res.status, 200)
    assert.equal(res.body.paymentsRequired, true)
    assert.deepEqual(
      res.body.items.map((n) => [n.chainId, n.tokens.map((t) => t.symbol)]),
      [
        [31337, ['USDC', 'FUSD', 'BAD', 'PUSD', 'ETH']],
        [31338, ['USDT']],
      ],
    )
  })

  test('a paid deployment waits for payment; berth pay --send pays, shows confirmations, and the deployment starts', async () => {
    const me = api(berth.url, token)
    const created = await me.post<{ id: string }>('/v1/deployments', { name: 'paid-app', image: 'app:1' })
    assert.equal(created.status, 202)
    await waitFor(
      'awaiting payment',
      async () =>
        (await me.get<{ status: string }>(`/v1/deployments/${created.body.id}`)).body.status ===
        'awaiting_payment',
    )

    const result = await runCliWhileMining([
      'pay',
      '--chain',
      '31337',
      '--token',
      'USDC',
      '--usd',
      '2.50',
      '--send',
      '--rpc',
      chains.a.rpcUrl,
    ])
    assert.equal(result.code, 0, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`)
    assert.match(result.stderr, /sent 0x[0-9a-f]{64}/)
    assert.match(result.stderr, /confirmations \d\/2/)
    assert.match(result.stdout, /credited \$2\.500000; order .* is success/)

    await waitFor(
      'running once paid',
      async () =>
        (await me.get<{ status: string }>(`/v1/deployments/${created.body.id}`)).body.status === 'running',
    )
    const balance = await me.get<{ availableMicroUsd: string; heldMicroUsd: string }>('/v1/balance')
    assert.equal(BigInt(balance.body.availableMicroUsd) + BigInt(balance.body.heldMicroUsd), 2_500_000n)
    assert.ok(BigInt(balance.body.heldMicroUsd) > 0n, 'the first interval is held')
    const ledger = await me.get<{ items: Array<{ cause: string }> }>('/v1/ledger')
    assert.deepEqual(ledger.body.items.map((i) => i.cause).sort(), ['hold', 'payment'])

    const balanceCli = await runCliWhileMining(['balance', '--json'])
    assert.equal(balanceCli.code, 0)
    assert.deepEqual(JSON.parse(balanceCli.stdout), balance.body)
  })

  test('the operator grants credits with the admin token; a user cannot', async () => {
    const wallet = anvilAccount(5).address
    const user = await api(berth.url, token).post(`/v1/admin/accounts/${wallet}/credits`, {
      amountMicroUsd: '1000',
      reason: 'welcome',
    })
    assert.equal(user.status, 403)
    const admin = await api(berth.url, ADMIN).post<{ availableMicroUsd: string }>(
      `/v1/admin/accounts/${wallet}/credits`,
      {
        amountMicroUsd: '1000',
        reason: 'welcome',
      },
    )
    assert.equal(admin.status, 200)
    assert.equal(admin.body.availableMicroUsd, '1000')
  })

  test('bad input is refused with a 4xx naming the problem, and writes nothing', async () => {
    const me = api(berth.url, token)
    const before = (await me.get('/v1/balance')).body
    const bad: Array<[string, unknown, RegExp]> = [
      [
        '/v1/quotes',
        { creditsMicroUsd: '-5', chainId: 31337, token: 'USDC' },
        /creditsMicroUsd|whole number/,
      ],
      ['/v1/quotes', { creditsMicroUsd: '5', chainId: 31337, token: 'USDC', extra: 1 }, /extra|nrecognized/],
      ['/v1/quotes', { creditsMicroUsd: '5', chainId: 4242, token: 'USDC' }, /chain 4242 is not accepted/],
      ['/v1/quotes', { creditsMicroUsd: '5', chainId: 31337, token: 'NOPE' }, /token NOPE is not accepted/],
      [
        '/v1/quotes',
        { deploymentId: 'not-a-uuid', hours: 1, chainId: 31337, token: 'USDC' },
        /UUID|deploymentId/,
      ],
      [`/v1/orders/${crypto.randomUUID()}/payments`, { txHash: '0x1234' }, /32-byte/],
    ]
    for (const [path, body, pattern] of bad) {
      const res = await me.post<{ error: { code: string; message: string; details?: unknown } }>(path, body)
      assert.ok(res.status >= 400 && res.status < 500, `${path} ${JSON.stringify(body)} → ${res.status}`)
      assert.match(JSON.stringify(res.body.error), pattern)
    }
    const malformed = await fetch(`${berth.url}/v1/quotes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"creditsMicroUsd": ',
    })
    assert.equal(malformed.status, 400)
    const missingOrder = await me.post(`/v1/orders/${crypto.randomUUID()}/payments`, {
      txHash: `0x${'ab'.repeat(32)}`,
    })
    assert.equal(missingOrder.status, 404)
    assert.deepEqual((await me.get('/v1/balance')).body, before)
  })

  test("another account's order answers 404", async () => {
    const order = await api(berth.url, token).post<{ orderId: string }>('/v1/quotes', {
      creditsMicroUsd: '1000000',
      chainId: 31338,
      token: 'USDT',
    })
    assert.equal(order.status, 201)
    const other = await signIn(berth.url)
    assert.equal((await api(berth.url, other.token).get(`/v1/orders/${order.body.orderId}`)).status, 404)
  })

  test('/metrics reports payments, charges, refunds, confirmation lag and the chain cursor lag', async () => {
    const text = (await api(berth.url).get<string>('/metrics')).body
    for (const name of [
      'berth_payments{status="credited"} 1',
      'berth_credits_charged_micro_usd',
      'berth_refunds_micro_usd',
      'berth_payment_confirmation_lag_seconds_count',
      'berth_chain_cursor_lag_blocks{network="anvil-a",consumer="payments"}',
    ]) {
      assert.ok(text.includes(name), `missing ${name}`)
    }
    assert.equal(promtoolProblems(text), '', 'promtool check metrics finds nothing')
  })
})
