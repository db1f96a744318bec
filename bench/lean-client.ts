import { Agent, request } from 'node:http'

// The load generator's HTTP client: node:http over a pool of kept-alive sockets. fetch costs the
// load generator about three times the CPU per request, and on a 2-core machine that CPU is taken
// from the server being measured.

export interface LeanClient {
  call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T }>
  close(): void
}

export function leanClient(
  baseUrl: string,
  token: string,
  sockets: number,
  extraHeaders: Record<string, string> = {},
): LeanClient {
  const agent = new Agent({ keepAlive: true, maxSockets: sockets })
  const { hostname, port } = new URL(baseUrl)
  return {
    call(method, path, body) {
      const payload = body === undefined ? undefined : JSON.stringify(body)
      return new Promise((resolve, reject) => {
        const req = request(
          {
            agent,
            hostname,
            port,
            method,
            path,
            headers: {
              authorization: `Bearer ${token}`,
              ...extraHeaders,
              ...(payload
                ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
                : {}),
            },
          },
          (res) => {
            const chunks: Buffer[] = []
            res.on('data', (chunk: Buffer) => chunks.push(chunk))
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString()
              resolve({ status: res.statusCode ?? 0, body: (text ? JSON.parse(text) : undefined) as never })
            })
            res.on('error', reject)
          },
        )
        req.on('error', reject)
        req.end(payload)
      })
    },
    close: () => agent.destroy(),
  }
}
