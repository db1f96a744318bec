import type { PublicClient } from 'viem'
import type { PriceSourceConfig, TokenConfig } from '../config/payments-schema.ts'
import { BerthError } from '../domain/errors.ts'
import {
  ascending,
  formatE18,
  median,
  type PriceE18,
  parseUsdE18,
  percentToBps,
  scaleToE18,
} from './money.ts'

// The price of a token in USD: the median of its fresh sources, lowered by the buffer so that a
// quote asks for a little more token than the credits it buys. Sources that fail or are stale are
// reported, not hidden, so an operator can see why a quote was refused.

export interface SourceReading {
  type: PriceSourceConfig['type']
  /** USD per whole token, as a decimal string; absent when the source gave nothing usable. */
  usd?: string
  fresh: boolean
  error?: string
}

export interface TokenPrice {
  /** What berth credits per whole token: the median less the buffer (USD × 10^18). */
  rate: PriceE18
  median: PriceE18
  sources: SourceReading[]
}

export interface OracleDeps {
  /** A client for reading on-chain feeds of a network. */
  clientFor(chainId: number): PublicClient
  now?: () => Date
  fetch?: typeof fetch
}

const aggregatorAbi = [
  {
    type: 'function',
    name: 'latestRoundData',
    stateMutability: 'view',
    inputs: [],
    outputs: [
      { name: 'roundId', type: 'uint80' },
      { name: 'answer', type: 'int256' },
      { name: 'startedAt', type: 'uint256' },
      { name: 'updatedAt', type: 'uint256' },
      { name: 'answeredInRound', type: 'uint80' },
    ],
  },
  { type: 'function', name: 'decimals', stateMutability: 'view', inputs: [], outputs: [{ type: 'uint8' }] },
] as const

export class PriceOracle {
  readonly #deps: OracleDeps
  readonly #httpCache = new Map<string, { at: number; value: PriceE18 }>()

  constructor(deps: OracleDeps) {
    this.#deps = deps
  }

  /** Throws `provider_unavailable` naming the problem when the token cannot be priced safely now. */
  async price(chainId: number, token: TokenConfig): Promise<TokenPrice> {
    const readings = await Promise.all(token.price.sources.map((s) => this.#read(chainId, s)))
    const fresh = readings.filter((r) => r.fresh).map((r) => parseUsdE18(r.usd!))
    const where = `${token.symbol} on chain ${chainId}`
    if (fresh.length < token.price.minSources) {
      throw new BerthError(
        'provider_unavailable',
        `no price for ${where}: ${fresh.length} fresh price source(s), ${token.price.minSources} needed`,
        { details: { sources: readings } },
      )
    }
    const mid = median(fresh)
    if (mid <= 0n) {
      throw new BerthError(
        'provider_unavailable',
        `no price for ${where}: the sources say it is worth nothing`,
        {
          details: { sources: readings },
        },
      )
    }
    const sorted = [...fresh].sort(ascending)
    const spread = sorted[sorted.length - 1]! - sorted[0]!
    const spreadBps = Number((spread * 10_000n) / mid)
    const maxBps = percentToBps(token.price.maxSlippagePercent)
    if (spreadBps > maxBps) {
      throw new BerthError(
        'provider_unavailable',
        `no price for ${where}: the sources disagree by ${spreadBps / 100}%, more than the allowed ${maxBps / 100}%`,
        { details: { sources: readings } },
      )
    }
    const bufferBps = BigInt(percentToBps(token.price.bufferPercent))
    return { rate: (mid * 10_000n) / (10_000n + bufferBps), median: mid, sources: readings }
  }

  async #read(chainId: number, source: PriceSourceConfig): Promise<SourceReading> {
    try {
      const value = await this.#value(chainId, source)
      if (value === 'stale') return { type: source.type, fresh: false, error: 'stale' }
      return { type: source.type, usd: formatE18(value), fresh: true }
    } catch (error) {
      return { type: source.type, fresh: false, error: (error as Error).message.split('\n')[0] }
    }
  }

  async #value(chainId: number, source: PriceSourceConfig): Promise<PriceE18 | 'stale'> {
    const now = (this.#deps.now ?? (() => new Date()))().getTime()
    switch (source.type) {
      case 'static':
        return parseUsdE18(source.usd)
      case 'chainlink': {
        const client = this.#deps.clientFor(chainId)
        const [round, decimals] = await Promise.all([
          client.readContract({ address: source.feed, abi: aggregatorAbi, functionName: 'latestRoundData' }),
          client.readContract({ address: source.feed, abi: aggregatorAbi, functionName: 'decimals' }),
        ])
        const [, answer, , updatedAt] = round
        if (answer <= 0n) throw new Error(`feed answered ${answer}`)
        if (now - Number(updatedAt) * 1000 > source.maxAgeSeconds * 1000) return 'stale'
        return scaleToE18(answer, decimals)
      }
      case 'http': {
        const cached = this.#httpCache.get(source.url + source.path)
        if (cached && now - cached.at < source.cacheSeconds * 1000) return cached.value
        const value = await this.#fetchJsonPrice(source)
        this.#httpCache.set(source.url + source.path, { at: now, value })
        return value
      }
    }
  }

  async #fetchJsonPrice(source: Extract<PriceSourceConfig, { type: 'http' }>): Promise<PriceE18> {
    const doFetch = this.#deps.fetch ?? fetch
    const response = await doFetch(source.url, { signal: AbortSignal.timeout(source.timeoutMs) })
    if (!response.ok) throw new Error(`HTTP ${response.status}`)
    let node: unknown = await response.json()
    for (const key of source.path.split('.')) {
      if (node === null || typeof node !== 'object' || !(key in node))
        throw new Error(`no "${source.path}" in the answer`)
      node = (node as Record<string, unknown>)[key]
    }
    // JSON numbers arrive as doubles; their shortest decimal form is what the source meant.
    if (typeof node === 'number' && Number.isFinite(node) && node >= 0) return parseUsdE18(decimalOf(node))
    if (typeof node === 'string') return parseUsdE18(node)
    throw new Error(`"${source.path}" is not a price`)
  }
}

function decimalOf(n: number): string {
  const text = n.toString()
  if (!text.includes('e')) return text
  return n.toFixed(18).replace(/0+$/, '').replace(/\.$/, '')
}
