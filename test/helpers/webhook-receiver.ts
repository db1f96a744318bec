import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

// A webhook receiver on loopback, as a tenant would run one: it records what arrives and answers
// as the test says (a status, after a while, with a body), and counts requests in flight.

export interface Received {
  path: string
  headers: IncomingHttpHeaders
  body: string
  at: number
}

export type Answer = { status: number; delayMs?: number; body?: string }

export interface Receiver {
  url: string
  port: number
  received: Received[]
  /** How the next requests are answered (default: 204 at once). */
  answer(fn: (request: Received) => Answer): void
  /** The most requests it had in flight at once. */
  maxInFlight(): number
  /** Lets requests held by `delayMs` go at once. */
  release(): void
  stop(): Promise<void>
}

export async function startReceiver(): Promise<Receiver> {
  let answer: (request: Received) => Answer = () => ({ status: 204 })
  const received: Received[] = []
  let inFlight = 0
  let most = 0
  const held = new Set<() => void>()
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      inFlight++
      most = Math.max(most, inFlight)
      const request = {
        path: req.url ?? '/',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
        at: Date.now(),
      }
      received.push(request)
      const { status, delayMs, body } = answer(request)
      let done = false
      let timer: NodeJS.Timeout | undefined
      const reply = () => {
        if (done) return
        done = true
        // A released answer leaves no timer behind to keep the test process alive.
        clearTimeout(timer)
        held.delete(reply)
        inFlight--
        if (res.destroyed) return
        res.writeHead(status, { 'content-type': 'text/plain' })
        res.end(body ?? '')
      }
      if (delayMs) {
        held.add(reply)
        timer = setTimeout(reply, delayMs)
      } else reply()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    answer: (fn) => {
      answer = fn
    },
    maxInFlight: () => most,
    release: () => {
      for (const reply of [...held]) reply()
    },
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
