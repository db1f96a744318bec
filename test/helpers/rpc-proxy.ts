import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

// A loopback JSON-RPC proxy in front of a real node that injects the failures public RPCs show:
// refusing every request (the endpoint is down) and rejecting eth_getLogs over too many blocks.
// Everything else is forwarded to the node unchanged.

interface JsonRpcRequest {
  jsonrpc: '2.0'
  id: number | string
  method: string
  params?: unknown[]
}

export interface RpcProxy {
  url: string
  /** While true, every connection is dropped without an answer. */
  setDown(down: boolean): void
  /** Serve `n` more HTTP requests, then go down. */
  downAfter(n: number): void
  /** Reject eth_getLogs spanning more than `blocks` blocks (undefined: accept any). */
  setMaxLogRange(blocks: number | undefined): void
  /** Spans (in blocks) of the eth_getLogs requests forwarded, and of those rejected. */
  readonly served: bigint[]
  readonly rejected: bigint[]
  /** Requests by method, forwarded or rejected. */
  readonly methods: Map<string, number>
  /** Connections dropped while down. */
  readonly refusedConnections: number
  stop(): Promise<void>
}

export async function startRpcProxy(target: string): Promise<RpcProxy> {
  let down = false
  let remaining: number | undefined
  let maxRange: number | undefined
  const served: bigint[] = []
  const rejected: bigint[] = []
  const methods = new Map<string, number>()
  let refused = 0

  const span = (request: JsonRpcRequest): bigint | undefined => {
    if (request.method !== 'eth_getLogs') return undefined
    const filter = request.params?.[0] as { fromBlock?: string; toBlock?: string } | undefined
    if (!filter?.fromBlock?.startsWith('0x') || !filter.toBlock?.startsWith('0x')) return undefined
    return BigInt(filter.toBlock) - BigInt(filter.fromBlock) + 1n
  }

  /** An error answer for the requests refused here, undefined for those to forward. */
  const refuse = (request: JsonRpcRequest) => {
    methods.set(request.method, (methods.get(request.method) ?? 0) + 1)
    const blocks = span(request)
    if (blocks === undefined) return undefined
    if (maxRange !== undefined && blocks > BigInt(maxRange)) {
      rejected.push(blocks)
      return {
        jsonrpc: '2.0',
        id: request.id,
        error: { code: -32005, message: `block range too large: at most ${maxRange} blocks per request` },
      }
    }
    served.push(blocks)
    return undefined
  }

  const forward = async (body: unknown) => {
    const response = await fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    return response.json() as Promise<unknown>
  }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (remaining !== undefined && remaining-- <= 0) down = true
    if (down) {
      refused++
      req.socket.destroy()
      return
    }
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const parsed = JSON.parse(Buffer.concat(chunks).toString()) as JsonRpcRequest | JsonRpcRequest[]
    let answer: unknown
    if (Array.isArray(parsed)) {
      const refused = parsed.map(refuse)
      const rest = parsed.filter((_, i) => !refused[i])
      const forwarded = rest.length ? ((await forward(rest)) as Array<{ id: unknown }>) : []
      const byId = new Map(forwarded.map((r) => [r.id, r]))
      answer = parsed.map((r, i) => refused[i] ?? byId.get(r.id))
    } else {
      answer = refuse(parsed) ?? (await forward(parsed))
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(answer))
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => req.socket.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    setDown(value) {
      down = value
      remaining = undefined
    },
    downAfter(n) {
      remaining = n
    },
    setMaxLogRange(blocks) {
      maxRange = blocks
    },
    served,
    rejected,
    methods,
    get refusedConnections() {
      return refused
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
