import { z } from 'zod'
import type { LogBatch, LogRequest } from '../fleet/log-relay.ts'
import type { Provider } from '../providers/provider.ts'

// Answers a log request from the control plane: reads the deployment's log from this node's
// engine with the docker provider's code and posts it back in numbered batches, at most every
// half second while following. It stops when the control plane says nobody reads any more (404),
// at the end of a log that is not followed, or when the agent stops.

export const logRequestSchema = z.strictObject({
  requestId: z.uuid(),
  deploymentId: z.uuid(),
  tail: z.number().int().min(0).max(10_000),
  follow: z.boolean(),
})

const FLUSH_MS = 500
/** A followed log that says nothing still posts this often, to learn whether anyone reads it. */
const KEEPALIVE_MS = 15_000
/** Batches stay well under the control plane's body limit (1 MiB by default). */
const MAX_BATCH_BYTES = 256 * 1024
const MAX_TEXT = 16_384

export async function sendLogs(options: {
  docker: Pick<Provider, 'logs'>
  nodeId: string
  request: LogRequest
  /** Posts one batch; answers the HTTP status. */
  post: (batch: LogBatch) => Promise<number>
  signal: AbortSignal
}): Promise<void> {
  const { request } = options
  const stop = new AbortController()
  const signal = AbortSignal.any([options.signal, stop.signal])
  const lines = await options.docker.logs(request.deploymentId, {
    tail: request.tail,
    follow: request.follow,
    signal,
  })
  const buffered: LogBatch['lines'] = []
  let batch = 0
  let lastPost = Date.now()
  let failure: Error | undefined
  let doneSent = false
  let posting: Promise<void> = Promise.resolve()
  /** Takes lines from the front of the buffer up to the batch size. */
  const take = () => {
    let bytes = 0
    let count = 0
    while (count < buffered.length && bytes + buffered[count]!.text.length * 3 + 64 <= MAX_BATCH_BYTES) {
      bytes += buffered[count]!.text.length * 3 + 64
      count++
    }
    return buffered.splice(0, Math.max(1, count))
  }
  const flush = (done: boolean) => {
    posting = posting.then(async () => {
      if (stop.signal.aborted) return
      const quiet = Date.now() - lastPost < KEEPALIVE_MS
      if (!done && buffered.length === 0 && quiet) return
      const sending = buffered.length > 0 ? take() : []
      const last = done && buffered.length === 0
      lastPost = Date.now()
      const status = await options.post({
        nodeId: options.nodeId,
        requestId: request.requestId,
        batch: ++batch,
        lines: sending,
        done: last,
      })
      if (status === 429) {
        // The reader is behind: the same lines again later.
        buffered.unshift(...sending)
        return
      }
      if (status < 300 && last) doneSent = true
      if (status === 404 || status === 410) stop.abort()
      else if (status >= 300) {
        failure = new Error(`the control plane refused a log batch (${status})`)
        stop.abort()
      }
    })
    return posting
  }
  const timer = setInterval(() => void flush(false).catch(() => stop.abort()), FLUSH_MS)
  try {
    for await (const line of lines) {
      buffered.push({
        at: line.at.toISOString(),
        stream: line.stream,
        // The control plane refuses a body with a NUL in it (PostgreSQL keeps none).
        text: line.text.slice(0, MAX_TEXT).replaceAll('\0', '\uFFFD'),
      })
      if (buffered.length >= 1000) await flush(false)
      if (signal.aborted) break
    }
    // The rest, the last batch saying it is the last (an empty one when nothing is left).
    while (buffered.length > 0 && !stop.signal.aborted) await flush(true)
    if (!stop.signal.aborted && !doneSent) await flush(true)
  } finally {
    clearInterval(timer)
    stop.abort()
  }
  if (failure) throw failure
}
