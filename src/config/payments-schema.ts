import { z } from 'zod'
import { bool, int } from './zod-helpers.ts'

// Payments, pricing and the EVM networks berth accepts. Money is integer micro-USD everywhere;
// token prices are decimal strings turned into integers at once (src/payments/money.ts).

/** Percentages with at most two decimals, e.g. 2.5; kept as basis points inside berth. */
const percent = (max: number) =>
  z.coerce
    .number()
    .min(0)
    .max(max)
    .refine((v) => Number.isInteger(Math.round(v * 100)) && Math.abs(v * 100 - Math.round(v * 100)) < 1e-9, {
      message: 'at most two decimals',
    })

export const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, 'must be a 0x-prefixed 20-byte hex address')
  .transform((a) => a.toLowerCase() as `0x${string}`)

const usdDecimal = z.string().regex(/^\d{1,12}(\.\d{1,18})?$/, 'must be a decimal string such as "1.00"')

const priceSource = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('static'), usd: usdDecimal }),
  z.strictObject({
    type: z.literal('chainlink'),
    feed: address,
    /** A round older than this is stale. */
    maxAgeSeconds: int(1, 7 * 86400).default(3600),
  }),
  z.strictObject({
    type: z.literal('http'),
    url: z.url(),
    /** Dot path to the USD price in the JSON answer, e.g. `ethereum.usd`. */
    path: z.string().min(1),
    timeoutMs: int(100, 60_000).default(5000),
    /** Answers are reused this long. */
    cacheSeconds: int(0, 3600).default(30),
  }),
])
export type PriceSourceConfig = z.output<typeof priceSource>

const token = z.strictObject({
  symbol: z.string().regex(/^[A-Za-z0-9.]{1,16}$/, 'must be 1-16 letters, digits or dots'),
  /** The ERC-20 contract, or `native` for the chain's own coin. */
  address: z.union([z.literal('native'), address]),
  decimals: int(0, 36),
  price: z.strictObject({
    sources: z.array(priceSource).min(1),
    /** Fewer fresh sources than this and no quote is given. */
    minSources: int(1, 10).default(1),
    /** Added to the amount a quote asks for, to cover price moves until the payment confirms. */
    bufferPercent: percent(50).default(2),
    /** Fresh sources further apart than this (as a share of their median) refuse a quote. */
    maxSlippagePercent: percent(100).default(5),
  }),
})
export type TokenConfig = z.output<typeof token>

const network = z
  .strictObject({
    chainId: int(1, 2 ** 31 - 1),
    name: z.string().regex(/^[a-z0-9-]{1,32}$/, 'must be lower-case letters, digits or dashes'),
    rpcUrls: z.array(z.url()).min(1),
    /** Blocks on top of the payment's block, or `finalized` for the chain's finalized tag. */
    confirmations: z.union([z.literal('finalized'), int(0, 10_000)]).default(10),
    pollIntervalMs: int(50, 600_000).default(2000),
    maxBlockRange: int(1, 100_000).default(2000),
    /** Where payments go; needed when the network has tokens (one used only for NFTs has none). */
    treasury: address.optional(),
    /** The first block the watcher scans; defaults to the head when berth first sees the network. */
    startBlock: int(0, Number.MAX_SAFE_INTEGER).optional(),
    /** Tokens accepted for payment here; none for a network used only for NFT collections. */
    tokens: z.array(token).default([]),
  })
  .superRefine((n, ctx) => {
    if (n.tokens.length > 0 && n.treasury === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: 'required when the network takes payments (has tokens)',
        path: ['treasury'],
      })
    }
    const symbols = n.tokens.map((t) => t.symbol.toUpperCase())
    const addresses = n.tokens.map((t) => t.address)
    symbols.forEach((s, i) => {
      if (symbols.indexOf(s) !== i)
        ctx.addIssue({ code: 'custom', message: `token ${s} is listed twice`, path: ['tokens', i] })
    })
    addresses.forEach((a, i) => {
      if (addresses.indexOf(a) !== i)
        ctx.addIssue({ code: 'custom', message: `token address ${a} is listed twice`, path: ['tokens', i] })
    })
  })
export type NetworkConfig = z.output<typeof network>
/** A network that takes payments: it has tokens, and so a treasury. */
export type PaymentNetwork = NetworkConfig & { treasury: `0x${string}` }

export function paymentNetworks(networks: readonly NetworkConfig[]): PaymentNetwork[] {
  return networks.filter((n): n is PaymentNetwork => n.tokens.length > 0 && n.treasury !== undefined)
}

export const paymentsSchema = z
  .strictObject({
    /** Off (the self-hosting default): deployments run without payment. */
    required: bool.default(false),
    quoteTtlSeconds: int(30, 7 * 86400).default(900),
    /** Share of every charge recorded as platform revenue; the rest is payable to the compute operator. */
    commissionPercent: percent(100).default(10),
    /** Time a deployment keeps running after its balance runs out, before it is stopped. */
    gracePeriodSeconds: int(0, 30 * 86400).default(3600),
    lowBalanceWarningMicroUsd: int(0, Number.MAX_SAFE_INTEGER).default(1_000_000),
  })
  .prefault({})

export const pricingSchema = z
  .strictObject({
    cpuHourMicroUsd: int(0, 1e12).default(10_000),
    memoryGibHourMicroUsd: int(0, 1e12).default(5_000),
    gpuHourMicroUsd: int(0, 1e12).default(1_000_000),
    diskGibMonthMicroUsd: int(0, 1e12).default(100_000),
    billingIntervalSeconds: int(1, 86400).default(60),
  })
  .prefault({})

export const networksSchema = z
  .array(network)
  .default([])
  .superRefine((networks, ctx) => {
    const ids = networks.map((n) => n.chainId)
    ids.forEach((id, i) => {
      if (ids.indexOf(id) !== i)
        ctx.addIssue({ code: 'custom', message: `chainId ${id} is listed twice`, path: [i] })
    })
  })
