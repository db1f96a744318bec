// Integer money. Credits are micro-USD (bigint); token amounts are base units (bigint); a token's
// USD price is kept as USD per whole token × 10^18 (`PriceE18`) so that even very cheap tokens
// keep their precision. Nothing here uses floating point.

export type PriceE18 = bigint

const E18 = 10n ** 18n
/** micro-USD → USD×10^18 */
const MICRO_TO_E18 = 10n ** 12n

/** Parses a non-negative decimal string ("1.00", "3012.5") into USD × 10^18; more than 18 decimals is refused. */
export function parseUsdE18(decimal: string): PriceE18 {
  const match = /^(\d+)(?:\.(\d{1,18}))?$/.exec(decimal.trim())
  if (!match) throw new Error(`"${decimal}" is not a non-negative decimal number`)
  const whole = BigInt(match[1]!)
  const fraction = BigInt((match[2] ?? '').padEnd(18, '0'))
  return whole * E18 + fraction
}

/** Renders USD × 10^18 as a decimal string without trailing zeros ("1", "0.98"). */
export function formatE18(value: PriceE18): string {
  const whole = value / E18
  const fraction = (value % E18).toString().padStart(18, '0').replace(/0+$/, '')
  return fraction ? `${whole}.${fraction}` : `${whole}`
}

/** A fixed-point integer answer with `decimals` (a Chainlink round) → USD × 10^18. */
export function scaleToE18(answer: bigint, decimals: number): PriceE18 {
  return decimals <= 18 ? answer * 10n ** BigInt(18 - decimals) : answer / 10n ** BigInt(decimals - 18)
}

/** What `baseUnits` of a token with `decimals` is worth, in micro-USD, rounded down (berth never credits more than arrived). */
export function tokenToMicroUsd(baseUnits: bigint, decimals: number, price: PriceE18): bigint {
  return (baseUnits * price) / (10n ** BigInt(decimals) * MICRO_TO_E18)
}

/** Base units needed to be worth `microUsd`, rounded up (a quote never asks for less than its value). */
export function microUsdToToken(microUsd: bigint, decimals: number, price: PriceE18): bigint {
  if (price <= 0n) throw new Error('price must be positive')
  const numerator = microUsd * 10n ** BigInt(decimals) * MICRO_TO_E18
  return (numerator + price - 1n) / price
}

/** `value × bps / 10000`, rounded down. */
export function basisPoints(value: bigint, bps: number): bigint {
  return (value * BigInt(bps)) / 10_000n
}

/** A config percentage with at most two decimals (2.5) → basis points (250). */
export function percentToBps(percent: number): number {
  return Math.round(percent * 100)
}

/** Ascending order for bigints (Array.sort compares as strings by default). */
export const ascending = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0)

export function median(values: readonly bigint[]): bigint {
  if (values.length === 0) throw new Error('median of nothing')
  const sorted = [...values].sort(ascending)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2n
}
