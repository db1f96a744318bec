import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import type { TokenConfig } from '../src/config/payments-schema.ts'
import { BerthError } from '../src/domain/errors.ts'
import { formatE18, parseUsdE18 } from '../src/payments/money.ts'
import { PriceOracle } from '../src/payments/oracle.ts'
import { type Anvil, publicClientFor, startAnvil, walletFor } from './helpers/anvil.ts'
import { deployTestPriceFeed, priceFeedAbi, receiptOf } from './helpers/contracts.ts'

// The price oracle against a real on-chain feed (anvil) and a real HTTP price source of the
// test's own: the median of fresh sources less the buffer, staleness, disagreement, too few sources.

let anvil: Anvil
let feed: `0x${string}`
let server: Server
let httpUrl: string
let httpAnswer: unknown = { ethereum: { usd: 3010 } }

before(async () => {
  anvil = await startAnvil({ chainId: 31337 })
  feed = await deployTestPriceFeed(walletFor(anvil), 8, 'ETH / USD')
  server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(httpAnswer))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  httpUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/price`
})
after(async () => {
  await new Promise((resolve) => server.close(resolve))
  await anvil.stop()
})

const setFeed = async (usdE8: bigint, updatedAtSeconds: number) => {
  const wallet = walletFor(anvil)
  await receiptOf(
    wallet,
    wallet.writeContract({
      address: feed,
      abi: priceFeedAbi,
      functionName: 'setAnswer',
      args: [usdE8, BigInt(updatedAtSeconds)],
    }),
  )
}
const oracle = () => new PriceOracle({ clientFor: () => publicClientFor(anvil) as never })
const eth = (
  sources: TokenConfig['price']['sources'],
  price: Partial<TokenConfig['price']> = {},
): TokenConfig => ({
  symbol: 'ETH',
  address: 'native',
  decimals: 18,
  price: { sources, minSources: 1, bufferPercent: 2, maxSlippagePercent: 5, ...price },
})
const chainlink = { type: 'chainlink' as const, feed: '' as `0x${string}`, maxAgeSeconds: 600 }
const http = () => ({
  type: 'http' as const,
  url: httpUrl,
  path: 'ethereum.usd',
  timeoutMs: 2000,
  cacheSeconds: 0,
})
const refused = (pattern: RegExp) => (error: unknown) => {
  assert.ok(error instanceof BerthError && error.code === 'provider_unavailable', String(error))
  assert.match(error.message, pattern)
  return true
}

describe('price oracle', () => {
  test('the median of fresh static, Chainlink and HTTP sources, less the buffer', async () => {
    await setFeed(3005_00000000n, Math.floor(Date.now() / 1000))
    httpAnswer = { ethereum: { usd: 3010 } }
    const price = await oracle().price(
      31337,
      eth([{ type: 'static', usd: '3000' }, { ...chainlink, feed }, http()]),
    )
    assert.equal(formatE18(price.median), '3005')
    assert.equal(price.rate, (parseUsdE18('3005') * 10_000n) / 10_200n)
    assert.deepEqual(
      price.sources.map((s) => [s.type, s.usd, s.fresh]),
      [
        ['static', '3000', true],
        ['chainlink', '3005', true],
        ['http', '3010', true],
      ],
    )
  })

  test('a Chainlink round older than its limit is stale; with no other source there is no price', async () => {
    await setFeed(3005_00000000n, Math.floor(Date.now() / 1000) - 3600)
    await assert.rejects(
      oracle().price(31337, eth([{ ...chainlink, feed }])),
      refused(/0 fresh price source\(s\), 1 needed/),
    )
    const price = await oracle().price(
      31337,
      eth([
        { ...chainlink, feed },
        { type: 'static', usd: '2999.5' },
      ]),
    )
    assert.equal(formatE18(price.median), '2999.5', 'the stale source is left out')
    assert.equal(price.sources[0]?.error, 'stale')
  })

  test('sources further apart than the allowed slippage refuse a quote', async () => {
    httpAnswer = { ethereum: { usd: '3300.00' } }
    await assert.rejects(
      oracle().price(31337, eth([{ type: 'static', usd: '3000' }, http()])),
      refused(/disagree by 9.52%, more than the allowed 5%/),
    )
  })

  test('fewer fresh sources than the minimum refuse a quote, naming why each failed', async () => {
    httpAnswer = { bitcoin: { usd: 1 } }
    await assert.rejects(
      oracle().price(31337, eth([{ type: 'static', usd: '3000' }, http()], { minSources: 2 })),
      (error: unknown) => {
        refused(/1 fresh price source\(s\), 2 needed/)(error)
        assert.match(JSON.stringify((error as BerthError).details), /no \\"ethereum.usd\\" in the answer/)
        return true
      },
    )
  })
})
