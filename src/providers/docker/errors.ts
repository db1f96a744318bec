import { ProviderError } from '../provider.ts'

// The one place engine and transport errors become berth's own `ProviderError` kinds, with the
// engine's error kept as the cause, so nothing above the adapter knows dockerode's shapes. The reconciler retries `transient` and `unavailable` with backoff and fails a
// deployment only on `permanent`, so a wrong kind here either loops forever or fails a healthy
// deployment: the mapping is deliberately narrow.

interface EngineError {
  statusCode?: number
  code?: string
  reason?: string
  json?: { message?: string } | null
  message?: string
}

const TRANSPORT_CODES = new Set([
  'ECONNREFUSED',
  'ENOENT', // the socket file is gone: the engine is not running
  'EACCES',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
])

export function engineStatusOf(error: unknown): number | undefined {
  return (error as EngineError | null)?.statusCode
}

/** The engine's own message (dockerode wraps it as `(HTTP code 404) no such container - …`). */
export function engineMessageOf(error: unknown): string {
  const e = error as EngineError | null
  return e?.json?.message ?? e?.message ?? String(error)
}

export const isNotFound = (error: unknown): boolean => engineStatusOf(error) === 404
export const isConflict = (error: unknown): boolean => engineStatusOf(error) === 409
/** 304: already started / already stopped. */
export const isNotModified = (error: unknown): boolean => engineStatusOf(error) === 304

export function isUnreachable(error: unknown): boolean {
  const e = error as EngineError | null
  if (e?.code && TRANSPORT_CODES.has(e.code)) return true
  // docker-modem reports its own request timeout without a code.
  return /timeout/i.test(e?.message ?? '') && engineStatusOf(error) === undefined
}

export function isNotManager(error: unknown): boolean {
  return /not a swarm manager|not part of a swarm|does not have a leader|rpc error: code = (Unavailable|DeadlineExceeded)/i.test(
    engineMessageOf(error),
  )
}

export function isImageMissing(error: unknown): boolean {
  return (
    isNotFound(error) &&
    /no such image|pull access denied|manifest unknown|repository does not exist/i.test(
      engineMessageOf(error),
    )
  )
}

/** A create that names a network removed meanwhile (by the last deployment of its owner). */
export function isNetworkMissing(error: unknown): boolean {
  const message = engineMessageOf(error)
  // An engine in swarm mode looks networks up through the swarm and answers 500 with the
  // lookup's NotFound inside.
  return (
    (isNotFound(error) && /network .*not found/i.test(message)) ||
    /could not attach to network .*not ?found/i.test(message)
  )
}

export function isPortTaken(error: unknown): boolean {
  return /port is already allocated|address already in use/i.test(engineMessageOf(error))
}

/** Translates anything thrown while talking to the engine; `what` says which operation failed. */
export function toProviderError(error: unknown, what: string): ProviderError {
  if (error instanceof ProviderError) return error
  if (isUnreachable(error)) {
    return new ProviderError('unavailable', `docker engine unreachable while trying to ${what}`, {
      cause: error,
    })
  }
  if (isNotManager(error)) {
    // The engine answers but cannot act for the swarm (it left it, or the managers lost their
    // quorum): the swarm is unavailable, not the deployment at fault.
    return new ProviderError(
      'unavailable',
      `swarm manager unavailable while trying to ${what}: ${engineMessageOf(error)}`,
      {
        cause: error,
      },
    )
  }
  if (isImageMissing(error)) {
    return new ProviderError('permanent', `image not available: ${engineMessageOf(error)}`, {
      cause: error,
      eventType: 'image_pull_failed',
    })
  }
  const status = engineStatusOf(error)
  // Another control plane created a duplicate owner network a moment ago and is removing it
  // (network.ts): the name resolves again shortly.
  if (/network .* is ambiguous/i.test(engineMessageOf(error))) {
    return new ProviderError('transient', `docker failed to ${what}: ${engineMessageOf(error)}`, {
      cause: error,
    })
  }
  if (status !== undefined && status >= 400 && status < 500 && status !== 409) {
    // A request the engine refuses outright (bad option, resources it cannot give) will be refused
    // again: retrying would only loop.
    return new ProviderError('permanent', `docker refused to ${what}: ${engineMessageOf(error)}`, {
      cause: error,
      eventType: 'provider_rejected',
    })
  }
  return new ProviderError('transient', `docker failed to ${what}: ${engineMessageOf(error)}`, {
    cause: error,
  })
}

/** Runs `work`, translating what it throws. */
export async function translating<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    throw toProviderError(error, what)
  }
}
