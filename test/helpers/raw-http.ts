import { type Agent, request } from 'node:http'
import type { RunningBerth } from './server.ts'

// Requests to a running berth over node:http, sent exactly as given: malformed JSON, any or no
// content type, a WebSocket upgrade, a keep-alive agent. `api()` in server.ts is for well-formed
// calls; this is for the ones a careful client would never send.

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
export type Body = any

export interface RawReply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Body
}

export interface RawOptions {
  token?: string | undefined
  /** Sent as is: a string is not JSON-encoded, so malformed JSON can be sent. */
  raw?: string
  /** JSON-encoded. */
  json?: unknown
  contentType?: string | null
  headers?: Record<string, string>
  agent?: Agent | false
}

/** Headers that ask for a WebSocket upgrade; an answered upgrade resolves with an empty body. */
export const wsHeaders = {
  connection: 'Upgrade',
  upgrade: 'websocket',
  'sec-websocket-version': '13',
  'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
}

export function send(
  server: RunningBerth,
  method: string,
  path: string,
  options: RawOptions = {},
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const payload = options.raw ?? (options.json === undefined ? undefined : JSON.stringify(options.json))
    const contentType =
      options.contentType === null
        ? undefined
        : (options.contentType ?? (payload ? 'application/json' : undefined))
    const req = request(
      `${server.url}${path}`,
      {
        method,
        agent: options.agent ?? false,
        headers: {
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(contentType ? { 'content-type': contentType } : {}),
          ...(payload === undefined ? {} : { 'content-length': String(Buffer.byteLength(payload)) }),
          ...options.headers,
        },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          text += chunk
        })
        res.on('end', () => {
          let body: Body = text
          if (String(res.headers['content-type'] ?? '').includes('json') && text) body = JSON.parse(text)
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body })
        })
      },
    )
    req.on('upgrade', (res, socket) => {
      socket.destroy()
      resolve({ status: res.statusCode ?? 101, headers: res.headers, body: '' })
    })
    req.on('error', reject)
    req.setTimeout(15_000, () => req.destroy(new Error(`${method} ${path} timed out`)))
    if (payload !== undefined) req.write(payload)
    req.end()
  })
}
