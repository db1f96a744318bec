import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  formatE18,
  median,
  microUsdToToken,
  parseUsdE18,
  percentToBps,
  scaleToE18,
  tokenToMicroUsd,
} from './money.ts'

test('decimal USD prices round-trip through USD×10^18 without floating point', () => {
  assert.equal(parseUsdE18('1.00'), 10n ** 18n)
  assert.equal(formatE18(parseUsdE18('3012.125')), '3012.125')
  assert.equal(formatE18(parseUsdE18('0.000000000000000001')), '0.000000000000000001')
  assert.throws(() => parseUsdE18('1e5'), /not a non-negative decimal/)
  assert.throws(() => parseUsdE18('-1'), /not a non-negative decimal/)
})

test('a Chainlink answer with 8 decimals scales to USD×10^18', () => {
  assert.equal(formatE18(scaleToE18(300012345678n, 8)), '3000.12345678')
})

test('token amounts convert to micro-USD rounding down, and back rounding up', () => {
  const usdc = parseUsdE18('1')
  assert.equal(tokenToMicroUsd(1_234_567n, 6, usdc), 1_234_567n)
  const eth = parseUsdE18('3000')
  // 1 wei is worth far less than a micro-USD: credited nothing, never rounded up.
  assert.equal(tokenToMicroUsd(1n, 18, eth), 0n)
  // $1 in ETH at $3000 is 333333333333334 wei (rounded up), which is worth at least $1.
  const wei = microUsdToToken(1_000_000n, 18, eth)
  assert.equal(wei, 333_333_333_333_334n)
  assert.ok(tokenToMicroUsd(wei, 18, eth) >= 1_000_000n)
})

test('median of an even count is the mean of the middle two; percents become basis points', () => {
  assert.equal(median([3n, 1n, 2n]), 2n)
  assert.equal(median([4n, 1n, 3n, 2n]), 2n)
  assert.equal(percentToBps(2.5), 250)
  assert.equal(percentToBps(10), 1000)
})
