import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { loadConfig } from './load.ts'
import { paymentNetworks } from './payments-schema.ts'

const token = {
  symbol: 'USDC',
  address: `0x${'a'.repeat(40)}`,
  decimals: 6,
  price: { sources: [{ type: 'static', usd: '1.00' }] },
}
const network = {
  chainId: 8453,
  name: 'base',
  rpcUrls: ['http://127.0.0.1:8545'],
  treasury: `0x${'B'.repeat(40)}`,
  tokens: [token],
}

describe('payments config', () => {
  it('is off by default, with the documented prices and no networks', () => {
    const config = loadConfig({ env: {} })
    assert.equal(config.payments.required, false)
    assert.equal(config.payments.quoteTtlSeconds, 900)
    assert.equal(config.pricing.billingIntervalSeconds, 60)
    assert.deepEqual(config.networks, [])
  })

  it('takes a network used only for NFT collections without tokens or treasury', () => {
    const config = loadConfig({
      env: {},
      flags: { networks: [{ chainId: 1, name: 'mainnet', rpcUrls: ['http://127.0.0.1:8545'] }] },
    })
    assert.deepEqual(config.networks[0]?.tokens, [])
    assert.equal(config.networks[0]?.treasury, undefined)
    assert.deepEqual(paymentNetworks(config.networks), [])
    assert.throws(
      () => loadConfig({ env: {}, flags: { networks: [{ ...network, treasury: undefined }] } }),
      /networks\.0\.treasury: required when the network takes payments/,
    )
  })

  it('reads payments and pricing keys from the environment', () => {
    const config = loadConfig({
      env: {
        BERTH_PAYMENTS__REQUIRED: 'true',
        BERTH_PRICING__CPU_HOUR_MICRO_USD: '123',
        BERTH_PAYMENTS__COMMISSION_PERCENT: '12.5',
      },
    })
    assert.equal(config.payments.required, true)
    assert.equal(config.pricing.cpuHourMicroUsd, 123)
    assert.equal(config.payments.commissionPercent, 12.5)
  })

  it('fills network defaults and lower-cases addresses', () => {
    const [parsed] = loadConfig({ env: {}, flags: { networks: [network] } }).networks
    assert.equal(parsed?.confirmations, 10)
    assert.equal(parsed?.treasury, `0x${'b'.repeat(40)}`)
    assert.equal(parsed?.tokens[0]?.price.bufferPercent, 2)
    assert.equal(parsed?.tokens[0]?.price.maxSlippagePercent, 5)
    const finalized = loadConfig({
      env: {},
      flags: { networks: [{ ...network, confirmations: 'finalized' }] },
    })
    assert.equal(finalized.networks[0]?.confirmations, 'finalized')
  })

  it('reports every problem of the networks at once', () => {
    const bad = [
      { ...network, treasury: '0x12', tokens: [token, { ...token }] },
      {
        ...network,
        confirmations: 'soon',
        tokens: [{ ...token, price: { sources: [{ type: 'static', usd: 'one' }] } }],
      },
    ]
    assert.throws(
      () => loadConfig({ env: {}, flags: { networks: bad } }),
      (error: Error) => {
        for (const part of [
          'networks.0.treasury',
          'token USDC is listed twice',
          'networks.1.confirmations',
          'networks.1.tokens.0.price.sources.0.usd',
        ]) {
          assert.ok(error.message.includes(part), `${part} in: ${error.message}`)
        }
        return true
      },
    )
  })

  it('refuses a chain listed twice', () => {
    assert.throws(
      () => loadConfig({ env: {}, flags: { networks: [network, network] } }),
      /chainId 8453 is listed twice/,
    )
  })
})
