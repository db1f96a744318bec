import type { IncomingMessage } from 'node:http'
import type { Context, MiddlewareHandler } from 'hono'
import { BerthError } from '../../domain/errors.ts'
import type { AppEnv } from '../context.ts'

// Rate limits as token buckets: each key (a client address, an account) holds up to `burst`
// tokens, refilled at `perMinute`; a request takes one, and with none left it is refused with 429
// and a Retry-After saying when one will be there. The buckets live in this process's memory: a
// check costs no database round trip, and with several replicas each enforces its own share.

export interface BucketSettings {
  perMinute: number
  burst: number
}

/** Keys kept at most: an address spray cannot grow memory without bound (the oldest key goes). */
const MAX_KEYS = 100_000

export class TokenBuckets {
  readonly #buckets = new Map<string, { tokens: number; at: number }>()
  constructor(
    private readonly settings: BucketSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes a token for `key`: 0 when allowed, else the seconds until one is there. */
  take(key: string): number {
    const at = this.now()
    const ratePerMs = this.settings.perMinute / 60_000
    const bucket = this.#buckets.get(key) ?? { tokens: this.settings.burst, at }
    // Re-inserted on every use, so the map's first key is the least recently used.
    this.#buckets.delete(key)
    bucket.tokens = Math.min(this.settings.burst, bucket.tokens + (at - bucket.at) * ratePerMs)
    bucket.at = at
    this.#buckets.set(key, bucket)
    if (this.#buckets.size > MAX_KEYS) this.#buckets.delete(this.#buckets.keys().next().value!)
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return 0
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerMs / 1000))
  }
}

export function rateLimited(retryAfterSeconds: number, what: string): BerthError {
  return new BerthError('rate_limited', `too many ${what}; try again in ${retryAfterSeconds}s`, {
    details: { retryAfterSeconds },
  })
}

/**
 * The address a request came from: the socket's peer, or, behind `trustProxyHops` proxies of the
 * operator's, the address the outermost of them saw (the right-most entries of X-Forwarded-For
 * are those proxies' own additions; anything further left a client can write itself).
 */
export function clientAddress(c: Context<AppEnv>, trustProxyHops: number): string {
  const peer =
    (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket.remoteAddress ?? 'unknown'
  if (trustProxyHops === 0) return peer
  const forwarded = (c.req.header('x-forwarded-for') ?? '')
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean)
  return forwarded[forwarded.length - trustProxyHops] ?? peer
}

/** A limit on the requests `keyOf` names (undefined: not limited), answered 429 with Retry-After. */
export function rateLimit(
  buckets: TokenBuckets,
  keyOf: (c: Context<AppEnv>) => string | undefined,
  what: string,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const key = keyOf(c)
    if (key !== undefined) {
      const waitSeconds = buckets.take(key)
      if (waitSeconds > 0) {
        c.header('retry-after', String(waitSeconds))
        throw rateLimited(waitSeconds, what)
      }
    }
    await next()
  }
}
