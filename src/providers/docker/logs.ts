import { StringDecoder } from 'node:string_decoder'
import type { LogLine } from '../provider.ts'
import { translating } from './errors.ts'

// Container logs as the engine sends them for a container without a TTY: a sequence of frames,
// each an 8-byte header (stream type, three zero bytes, big-endian payload length) and a payload.
// With `timestamps: true` every line starts with an RFC 3339 timestamp with nanoseconds.

const HEADER_BYTES = 8

/** Incremental decoder: frames may arrive split across chunks, and lines across frames. */
export class LogDecoder {
  #pending: Buffer = Buffer.alloc(0)
  readonly #text = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') }
  readonly #partial = { stdout: '', stderr: '' }

  push(chunk: Buffer): LogLine[] {
    this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk
    const out: LogLine[] = []
    while (this.#pending.length >= HEADER_BYTES) {
      const size = this.#pending.readUInt32BE(4)
      if (this.#pending.length < HEADER_BYTES + size) break
      // Type 2 is stderr; 0 (stdin) and 1 are shown as stdout.
      const stream = this.#pending[0] === 2 ? 'stderr' : 'stdout'
      const payload = this.#pending.subarray(HEADER_BYTES, HEADER_BYTES + size)
      this.#pending = this.#pending.subarray(HEADER_BYTES + size)
      const text = this.#partial[stream] + this.#text[stream].write(payload)
      const lines = text.split('\n')
      this.#partial[stream] = lines.pop() ?? ''
      for (const raw of lines) out.push(parseLogLine(stream, raw))
    }
    return out
  }

  /** What is left once the stream ends: a last line without its newline. */
  end(): LogLine[] {
    const out: LogLine[] = []
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.#partial[stream] + this.#text[stream].end()
      this.#partial[stream] = ''
      if (rest) out.push(parseLogLine(stream, rest))
    }
    return out
  }
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2}) /

/** Splits the engine's timestamp off a line; a line without one is dated now. */
export function parseLogLine(stream: LogLine['stream'], raw: string): LogLine {
  const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
  const match = TIMESTAMP.exec(line)
  if (!match) return { at: new Date(), stream, text: line }
  // JavaScript dates keep milliseconds; the engine sends nanoseconds.
  const fraction = (match[2] ?? '').slice(0, 4)
  return { at: new Date(`${match[1]}${fraction}${match[3]}`), stream, text: line.slice(match[0].length) }
}

/** Lines from a log response: a Buffer (not following) or a stream (following), ended by `signal`. */
export async function* readLogLines(
  source: NodeJS.ReadableStream | Buffer,
  signal: AbortSignal,
): AsyncGenerator<LogLine> {
  const decoder = new LogDecoder()
  if (Buffer.isBuffer(source)) {
    yield* decoder.push(source)
    yield* decoder.end()
    return
  }
  const stream = source as NodeJS.ReadableStream & { destroy(): void }
  const onAbort = () => stream.destroy()
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    for await (const chunk of stream) {
      for (const line of decoder.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk))) yield line
    }
    yield* decoder.end()
  } catch (error) {
    // Destroying the stream on abort ends the iteration with a premature-close error: expected.
    if (!signal.aborted) throw error
  } finally {
    signal.removeEventListener('abort', onAbort)
    stream.destroy()
  }
}

/** Interleaves several line sources in arrival order (one per replica when following). */
export async function* mergeLines(sources: Array<AsyncIterable<LogLine>>): AsyncGenerator<LogLine> {
  const iterators = sources.map((s) => s[Symbol.asyncIterator]())
  const next = (i: number) => iterators[i]!.next().then((result) => ({ i, result }))
  const pending = new Map(iterators.map((_, i) => [i, next(i)]))
  try {
    while (pending.size > 0) {
      const { i, result } = await Promise.race(pending.values())
      if (result.done) {
        pending.delete(i)
        continue
      }
      pending.set(i, next(i))
      yield result.value
    }
  } finally {
    await Promise.allSettled(iterators.map((it) => it.return?.()))
  }
}

/** The engine's log options for one replica's share of a request. */
export function engineLogOptions({
  tail,
  follow,
  signal,
}: {
  tail: number
  follow: boolean
  signal: AbortSignal
}) {
  return {
    stdout: true,
    stderr: true,
    timestamps: true,
    tail,
    // The engine client types `follow` as a literal per overload; both are the same call.
    follow: follow as true,
    abortSignal: signal,
  }
}

/** One replica's log, opened by the engine call that reads it (a container's, a Swarm service's). */
export interface LogSource {
  name: string
  open(options: { tail: number; follow: boolean; signal: AbortSignal }): Promise<unknown>
}

/**
 * A deployment's log over its replicas: resolves once every source has answered (an outage is
 * then an error the caller can still answer with a status). The tail is shared out over the
 * replicas, so what one request reads is capped whatever the replica count; not following, the
 * last `tail` lines over all replicas in time order; following, lines as they arrive.
 */
export async function readReplicaLogs(
  sources: LogSource[],
  { tail, follow, signal }: { tail: number; follow: boolean; signal: AbortSignal },
): Promise<AsyncIterable<LogLine>> {
  // Our own abort as well as the caller's: a consumer that just stops iterating must still
  // close the engine's streams.
  const done = new AbortController()
  const stop = () => done.abort()
  signal.addEventListener('abort', stop, { once: true })
  const close = () => {
    signal.removeEventListener('abort', stop)
    done.abort()
  }
  const perReplica = Math.ceil(tail / Math.max(1, sources.length))
  let lines: Array<AsyncIterable<LogLine>>
  try {
    lines = await Promise.all(
      sources.map(async (source) => {
        const raw = await translating(`read logs of ${source.name}`, () =>
          source.open({ tail: perReplica, follow, signal: done.signal }),
        )
        return readLogLines(raw as NodeJS.ReadableStream | Buffer, done.signal)
      }),
    )
  } catch (error) {
    close()
    throw error
  }
  return (async function* () {
    try {
      if (follow) {
        yield* mergeLines(lines)
        return
      }
      const all: LogLine[] = []
      for (const source of lines) for await (const line of source) all.push(line)
      all.sort((a, b) => a.at.getTime() - b.at.getTime())
      yield* all.slice(Math.max(0, all.length - tail))
    } finally {
      close()
    }
  })()
}
