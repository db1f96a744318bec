import { setTimeout as delayFor } from 'node:timers/promises'
import { BerthError } from '../domain/errors.ts'
import { ApiError, ConnectionError } from './http-client.ts'

// A minimal Server-Sent Events client over fetch streams: the parser follows the WHATWG
// "event stream interpretation" rules; followSse reconnects with Last-Event-ID after a dropped
// connection, a server error, or a silent connection (no bytes, not even keepalive comments).

export interface SseMessage {
  /** The last event id seen on the stream (ids persist across messages, as in EventSource). */
  id: string | undefined
  event: string
  data: string
}

export class SseParser {
  /** Last `id:` field seen; what a reconnect sends as Last-Event-ID. */
  lastEventId: string | undefined
  /** Reconnection delay the server asked for with `retry:`. */
  retryMs: number | undefined
  private partial = ''
  private skipLineFeed = false
  private data: string[] = []
  private event = ''

  constructor(lastEventId?: string) {
    this.lastEventId = lastEventId
  }

  /** Feeds decoded text; returns the messages it completed. A message left open at EOF is dropped. */
  push(chunk: string): SseMessage[] {
    const out: SseMessage[] = []
    let start = 0
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i)
      if (this.skipLineFeed) {
        this.skipLineFeed = false
        if (c === 10) {
          start = i + 1
          continue
        }
      }
      if (c !== 10 && c !== 13) continue
      const line = this.partial + chunk.slice(start, i)
      this.partial = ''
      start = i + 1
      // CRLF may be split across chunks: remember to drop a leading LF next time.
      if (c === 13) this.skipLineFeed = true
      const message = this.line(line)
      if (message) out.push(message)
    }
    this.partial += chunk.slice(start)
    return out
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') return this.dispatch()
    if (line.startsWith(':')) return undefined
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'data') this.data.push(value)
    else if (field === 'event') this.event = value
    else if (field === 'id' && !value.includes('\0')) this.lastEventId = value
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value)
    return undefined
  }

  private dispatch(): SseMessage | undefined {
    const data = this.data
    const event = this.event
    this.data = []
    this.event = ''
    if (data.length === 0) return undefined
    return { id: this.lastEventId, event: event || 'message', data: data.join('\n') }
  }
}

export interface FollowSseOptions {
  /** Opens the stream (a 2xx response), sending Last-Event-ID when one is given. */
  open(lastEventId: string | undefined, signal: AbortSignal): Promise<Response>
  lastEventId?: string
  signal?: AbortSignal
  /** No byte for this long and the connection is taken for dead (servers send keepalives). */
  idleTimeoutMs?: number
  /** First reconnect delay; doubles per failed attempt up to maxRetryMs. */
  retryMs?: number
  maxRetryMs?: number
  /** Consecutive attempts that receive nothing before giving up with the last error. */
  maxAttempts?: number
  delay?: (ms: number, signal?: AbortSignal) => Promise<void>
}

class IdleTimeout extends BerthError {
  constructor(ms: number) {
    super('unreachable', `no data from the event stream for ${ms} ms`)
    this.name = 'IdleTimeout'
  }
}

/** Yields messages until the caller stops iterating, the signal aborts, or the server answers 204. */
export async function* followSse(options: FollowSseOptions): AsyncGenerator<SseMessage> {
  const idleMs = options.idleTimeoutMs ?? 60_000
  const maxRetryMs = options.maxRetryMs ?? 10_000
  const maxAttempts = options.maxAttempts ?? 10
  const delay = options.delay ?? ((ms, signal) => delayFor(ms, undefined, { signal }))
  let retryMs = options.retryMs ?? 500
  let lastEventId = options.lastEventId
  let failures = 0

  for (;;) {
    options.signal?.throwIfAborted()
    const controller = new AbortController()
    const abort = () => controller.abort(options.signal?.reason)
    options.signal?.addEventListener('abort', abort, { once: true })
    let idle: NodeJS.Timeout | undefined
    const armIdle = () => {
      clearTimeout(idle)
      idle = setTimeout(() => controller.abort(new IdleTimeout(idleMs)), idleMs)
    }
    const parser = new SseParser(lastEventId)
    let received = false
    try {
      armIdle()
      const response = await options.open(lastEventId, controller.signal)
      if (response.status === 204 || !response.body) return
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
      try {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) break
          armIdle()
          received = true
          failures = 0
          for (const message of parser.push(value)) {
            lastEventId = parser.lastEventId
            yield message
          }
        }
      } finally {
        reader.cancel().catch(() => {})
      }
      // The server closed the stream: reconnect and resume.
      lastEventId = parser.lastEventId
      if (!received) failures++
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason
      if (!isRetryable(error, controller.signal)) throw error
      lastEventId = parser.lastEventId
      if (!received) failures++
      if (failures >= maxAttempts) throw error
    } finally {
      clearTimeout(idle)
      options.signal?.removeEventListener('abort', abort)
      controller.abort()
    }
    if (failures >= maxAttempts) throw new ConnectionError('the event stream', 'closed without data')
    retryMs = parser.retryMs ?? retryMs
    await delay(Math.min(maxRetryMs, retryMs * 2 ** Math.max(0, failures - 1)), options.signal)
  }
}

function isRetryable(error: unknown, connection: AbortSignal): boolean {
  if (error instanceof ApiError) return error.status >= 500 || error.status === 429
  if (error instanceof ConnectionError) return true
  // Our own idle abort, or the body stream failing mid-way (reset, truncated chunked encoding).
  if (connection.aborted && connection.reason instanceof IdleTimeout) return true
  return error instanceof TypeError || (error as Error)?.name === 'AbortError' || error instanceof IdleTimeout
}
