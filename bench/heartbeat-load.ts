import { Agent, request } from 'node:http'

// An open-loop load generator: sends prepared requests at a fixed rate, whatever the answers'
// latency (a closed loop would slow down with the server and hide its queueing), over a pool of
// kept-alive sockets, and records each request's latency from when it was due.

export interface PreparedRequest {
  body: string
  headers: Record<string, string>
}

export interface LoadResult {
  sent: number
  /** Answers with the expected status. */
  ok: number
  /** Other answers and failed requests, by status (0: no answer). */
  failed: Map<number, number>
  /** Milliseconds from when each request was due to its answer, sorted. */
  latencies: Float64Array
  seconds: number
}

export async function runOpenLoop(options: {
  url: string
  path: string
  rate: number
  seconds: number
  sockets: number
  expectStatus: number
  next: (i: number) => PreparedRequest
}): Promise<LoadResult> {
  const { hostname, port } = new URL(options.url)
  const agent = new Agent({ keepAlive: true, maxSockets: options.sockets })
  const total = Math.floor(options.rate * options.seconds)
  const latencies = new Float64Array(total)
  const failed = new Map<number, number>()
  let ok = 0
  let answered = 0
  let sent = 0
  const started = performance.now()
  let resolveAll!: () => void
  const done = new Promise<void>((resolve) => (resolveAll = resolve))

  const send = (i: number, dueAt: number) => {
    const prepared = options.next(i)
    const finish = (status: number) => {
      latencies[i] = performance.now() - dueAt
      if (status === options.expectStatus) ok++
      else failed.set(status, (failed.get(status) ?? 0) + 1)
      if (++answered === total) resolveAll()
    }
    const req = request(
      {
        agent,
        hostname,
        port,
        method: 'POST',
        path: options.path,
        headers: { ...prepared.headers, 'content-length': Buffer.byteLength(prepared.body) },
      },
      (res) => {
        res.resume()
        res.on('end', () => finish(res.statusCode ?? 0))
      },
    )
    req.on('error', () => finish(0))
    req.end(prepared.body)
  }

  // Every millisecond, send what has come due: the rate holds even when a tick runs late.
  const timer = setInterval(() => {
    const elapsed = performance.now() - started
    const due = Math.min(total, Math.floor((elapsed / 1000) * options.rate))
    while (sent < due) {
      send(sent, started + (sent / options.rate) * 1000)
      sent++
    }
    if (sent === total) clearInterval(timer)
  }, 1)
  await done
  const seconds = (performance.now() - started) / 1000
  agent.destroy()
  latencies.sort()
  return { sent, ok, failed, latencies, seconds }
}

export function percentileOf(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}
