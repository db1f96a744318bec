import { createPublicClient, http, type PublicClient } from 'viem'
import { BerthError } from '../domain/errors.ts'

// Clients for one network's RPC endpoints, and reads that count only when every endpoint agrees:
// a payment is credited on the word of all configured RPCs, never of a single (possibly lying,
// lagging or forked) one.

export interface RpcClientOptions {
  /** Per-request timeout; a range of getLogs that times out is split by the scanner. */
  timeoutMs?: number
  /** Requests made together are sent as one JSON-RPC batch of at most this many. */
  batchSize?: number
}

/** One viem public client per URL. viem's own retries are off: the scanner owns retrying. */
export function createRpcClients(rpcUrls: readonly string[], options: RpcClientOptions = {}): PublicClient[] {
  if (rpcUrls.length === 0) throw new Error('a network needs at least one RPC URL')
  return rpcUrls.map((url) =>
    createPublicClient({
      transport: http(url, {
        timeout: options.timeoutMs ?? 10_000,
        retryCount: 0,
        batch: { batchSize: options.batchSize ?? 100, wait: 0 },
      }),
    }),
  )
}

/** RPC endpoints answered the same question differently. Transient: they usually converge. */
export class RpcDisagreementError extends BerthError {
  constructor(
    readonly endpoints: string[],
    readonly answers: unknown[],
  ) {
    super('provider_unavailable', `RPC endpoints disagree (${endpoints.join(', ')})`)
    this.name = 'RpcDisagreementError'
  }
}

/**
 * Runs `fn` against every client at once and returns its answer when all answers are equal
 * (bigints compared by value, hex strings case-insensitively, since one node may checksum
 * addresses and another not). Throws the first error if any client fails, and
 * RpcDisagreementError if they differ.
 */
export async function readAgreed<T>(
  clients: readonly PublicClient[],
  fn: (client: PublicClient) => Promise<T>,
): Promise<T> {
  const answers = await Promise.all(clients.map((client) => fn(client)))
  const first = normalise(answers[0])
  for (let i = 1; i < answers.length; i++) {
    if (normalise(answers[i]) !== first) {
      throw new RpcDisagreementError(clients.map(endpointOf), answers)
    }
  }
  return answers[0] as T
}

function normalise(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return `${v}n`
    if (typeof v === 'string' && /^0x[0-9a-fA-F]*$/.test(v)) return v.toLowerCase()
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      // Same keys in any order are the same answer.
      return Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    }
    return v
  })
}

/** The endpoint's origin only: RPC URLs often carry an API key in their path or query. */
export function endpointOf(client: PublicClient): string {
  const url = (client.transport as { url?: string }).url
  if (!url) return client.transport.type
  try {
    return new URL(url).origin
  } catch {
    return 'invalid-url'
  }
}
