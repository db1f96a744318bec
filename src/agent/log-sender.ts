import { z } from 'zod'
import type { LogBatch, LogRequest } from '../fleet/log-relay.ts'
import type { LogLine, Provider } from '../providers/provider.ts'

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
const MAX_BATCH = 500
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
  const buffered: LogLine[] = []
  let batch = 0
  let posting: Promise<void> = Promise.resolve()
  const flush = (done: boolean) => {
    posting = posting.then(async () => {
      if (stop.signal.aborted || (!done && buffered.length === 0)) return
      const status = await options.post({
        nodeId: options.nodeId,
        requestId: request.requestId,
        batch: ++batch,
        lines: buffered.splice(0, MAX_BATCH).map((line) => ({
          at: line.at.toISOString(),
          stream: line.stream,
          // The control plane refuses a body with a NUL in it (PostgreSQL keeps none).
          text: line.text.slice(0, MAX_TEXT).replaceAll('\0', '\uFFFD'),
        })),
        done,
      })
      if (status === 404 || status === 410) stop.abort()
    })
    return posting
  }
  const timer = setInterval(() => void flush(false).catch(() => stop.abort()), FLUSH_MS)
  try {
    for await (const line of lines) {
      buffered.push(line)
      if (buffered.length >= MAX_BATCH) await flush(false)
      if (signal.aborted) break
    }
    while (buffered.length > MAX_BATCH) await flush(false)
    if (!signal.aborted) await flush(true)
  } finally {
    clearInterval(timer)
    stop.abort()
  }
}
