import type { IncomingMessage } from 'node:http'
import type { Context, MiddlewareHandler } from 'hono'
import { BerthError, invalidInput } from '../../domain/errors.ts'
import type { AppEnv } from '../context.ts'

// Reads a request's body once, up to a limit, and leaves it where the validators read it (as text,
// in hono's body cache). Served by node, it reads the request's IncomingMessage itself: touching
// the web Request instead makes the node adapter build one for every request (headers, an abort
// signal, two stream wrappers), which was about a tenth of berth's CPU under the throughput
// benchmark, GETs included. Without one (app.request() in tests) it reads the web body stream.

export function bodyReader(maxBytes: number): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const method = c.req.method
    if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return next()
    if (Number(c.req.header('content-length') ?? 0) > maxBytes) tooLarge(c, maxBytes)
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming
    const source: AsyncIterable<Uint8Array> | null = incoming ?? c.req.raw.body
    if (!source) return next()
    const chunks: Uint8Array[] = []
    let size = 0
    // An explicit iterator, left unfinished on overflow: finishing it would destroy the socket
    // before the 413 is written.
    const reader = source[Symbol.asyncIterator]()
    for (;;) {
      const { done, value } = await reader.next()
      if (done) break
      size += value.length
      if (size > maxBytes) tooLarge(c, maxBytes)
      chunks.push(value)
    }
    // Said here because the router's own check for it reads the web Request's body, which is
    // empty once this has read the IncomingMessage.
    if (size > 0 && !c.req.header('content-type')) {
      throw new BerthError(
        'invalid_input',
        'unsupported media type: send the body with Content-Type: application/json',
      )
    }
    // TextDecoder, as Request.text() would: UTF-8, a leading BOM dropped. (hono types the cache's
    // entries as values; it keeps promises of them.)
    const text = new TextDecoder().decode(Buffer.concat(chunks))
    refuseNul(text)
    const cache = c.req.bodyCache as { text?: Promise<string> }
    cache.text = Promise.resolve(text)
    return next()
  }
}

/**
 * PostgreSQL cannot store a NUL character in text or jsonb, so a body carrying one (as the JSON
 * escape \u0000; a raw one is not valid JSON anyway) is refused here, naming where it is, rather
 * than failing at the database. The body is parsed for this only when the escape appears in it.
 */
function refuseNul(text: string): void {
  if (!text.includes('\\u0000') && !text.includes('\0')) return
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return // the validator reports malformed JSON
  }
  const path = nulPath(body, [])
  if (path) {
    throw invalidInput(`invalid request: ${path}: NUL characters (\\u0000) are not allowed`, [
      { path, message: 'NUL characters (\\u0000) are not allowed' },
    ])
  }
}

function nulPath(value: unknown, at: string[]): string | undefined {
  const here = () => at.join('.') || '(root)'
  if (typeof value === 'string') return value.includes('\0') ? here() : undefined
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = nulPath(item, [...at, String(index)])
      if (found) return found
    }
    return undefined
  }
  if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (key.includes('\0')) return [...at, key.replaceAll('\0', '\\u0000')].join('.')
      const found = nulPath(item, [...at, key])
      if (found) return found
    }
  }
  return undefined
}

function tooLarge(c: Context, maxBytes: number): never {
  // The rest of the body stays unread, so this connection cannot carry another request.
  c.header('connection', 'close')
  throw new BerthError('payload_too_large', `request body is larger than ${maxBytes} bytes`)
}
