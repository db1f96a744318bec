import type { Address, Hex } from 'viem'
import type { NetworkConfig } from '../../src/config/payments-schema.ts'
import { networksSchema } from '../../src/config/payments-schema.ts'
import { type Anvil, anvilAccount, startAnvil, walletFor } from './anvil.ts'
import {
  deployFalseReturningToken,
  deployFeeOnTransferToken,
  deployPhantomTransferToken,
  deployTestPriceFeed,
  deployTestToken,
  erc20Abi,
  priceFeedAbi,
  receiptOf,
  transferToken,
} from './contracts.ts'

// Two anvil chains with the tokens the payment tests pay with: on the first, a plain ERC-20
// (USDC), a fee-on-transfer token, one that returns false, one that logs transfers it never makes,
// and native ETH priced by an on-chain feed; on the second, another plain ERC-20 (USDT).

/** Pricing for money tests: 1 USD per CPU-hour, nothing else, billed hourly. */
export const testPricing = {
  cpuHourMicroUsd: 1_000_000,
  memoryGibHourMicroUsd: 0,
  diskGibMonthMicroUsd: 0,
  gpuHourMicroUsd: 0,
  billingIntervalSeconds: 3600,
}

export const PAYER = 1
export const STRANGER = 2
export const treasury = anvilAccount(9).address.toLowerCase() as Address

export interface PaymentChains {
  a: Anvil
  b: Anvil
  tokens: { usdc: Address; fee: Address; falsy: Address; phantom: Address; feed: Address; usdt: Address }
  networks(overrides?: { confirmations?: number; maxBlockRange?: number; rpcUrlA?: string }): NetworkConfig[]
  /** Sends an ERC-20 transfer to the treasury and waits for its receipt. */
  payToken(chain: Anvil, token: Address, amount: bigint, from?: number): Promise<Hex>
  payNative(chain: Anvil, wei: bigint, from?: number): Promise<Hex>
  setEthPrice(usdE8: bigint, updatedAt?: bigint): Promise<void>
  stop(): Promise<void>
}

export async function startPaymentChains(): Promise<PaymentChains> {
  const [a, b] = await Promise.all([startAnvil({ chainId: 31337 }), startAnvil({ chainId: 31338 })])
  const deployerA = walletFor(a, 0)
  const deployerB = walletFor(b, 0)
  const usdc = await deployTestToken(deployerA)
  const fee = await deployFeeOnTransferToken(deployerA)
  const falsy = await deployFalseReturningToken(deployerA)
  const phantom = await deployPhantomTransferToken(deployerA)
  const feed = await deployTestPriceFeed(deployerA, 8, 'ETH / USD')
  const usdt = await deployTestToken(deployerB)
  for (const [chain, token] of [
    [a, usdc],
    [a, fee],
    [a, falsy],
    [a, phantom],
    [b, usdt],
  ] as const) {
    for (const who of [PAYER, STRANGER]) {
      await receiptOf(
        walletFor(chain, 0),
        walletFor(chain, 0).writeContract({
          address: token,
          abi: erc20Abi,
          functionName: 'mint',
          args: [anvilAccount(who).address, 1_000_000_000_000n],
        }),
      )
    }
  }
  const fixture: PaymentChains = {
    a,
    b,
    tokens: { usdc, fee, falsy, phantom, feed, usdt },
    networks: (overrides = {}) =>
      networksSchema.parse([
        {
          chainId: a.chainId,
          name: 'anvil-a',
          rpcUrls: [overrides.rpcUrlA ?? a.rpcUrl],
          confirmations: overrides.confirmations ?? 3,
          pollIntervalMs: 100,
          maxBlockRange: overrides.maxBlockRange ?? 2000,
          treasury,
          tokens: [
            {
              symbol: 'USDC',
              address: usdc,
              decimals: 6,
              price: { sources: [{ type: 'static', usd: '1.00' }] },
            },
            {
              symbol: 'FUSD',
              address: fee,
              decimals: 6,
              price: { sources: [{ type: 'static', usd: '1.00' }] },
            },
            {
              symbol: 'BAD',
              address: falsy,
              decimals: 6,
              price: { sources: [{ type: 'static', usd: '1.00' }] },
            },
            {
              symbol: 'PUSD',
              address: phantom,
              decimals: 6,
              price: { sources: [{ type: 'static', usd: '1.00' }] },
            },
            {
              symbol: 'ETH',
              address: 'native',
              decimals: 18,
              price: { sources: [{ type: 'chainlink', feed, maxAgeSeconds: 7 * 86400 }] },
            },
          ],
        },
        {
          chainId: b.chainId,
          name: 'anvil-b',
          rpcUrls: [b.rpcUrl],
          confirmations: overrides.confirmations ?? 3,
          pollIntervalMs: 100,
          treasury,
          tokens: [
            {
              symbol: 'USDT',
              address: usdt,
              decimals: 6,
              price: { sources: [{ type: 'static', usd: '1' }] },
            },
          ],
        },
      ]),
    async payToken(chain, token, amount, from = PAYER) {
      const receipt = await transferToken(walletFor(chain, from), token, treasury, amount)
      return receipt.transactionHash
    },
    async payNative(chain, wei, from = PAYER) {
      const wallet = walletFor(chain, from)
      const receipt = await receiptOf(wallet, wallet.sendTransaction({ to: treasury, value: wei }))
      return receipt.transactionHash
    },
    async setEthPrice(usdE8, updatedAt = BigInt(Math.floor(Date.now() / 1000))) {
      await receiptOf(
        deployerA,
        deployerA.writeContract({
          address: feed,
          abi: priceFeedAbi,
          functionName: 'setAnswer',
          args: [usdE8, updatedAt],
        }),
      )
    },
    async stop() {
      await Promise.all([a.stop(), b.stop()])
    },
  }
  await fixture.setEthPrice(3000_00000000n)
  return fixture
}
