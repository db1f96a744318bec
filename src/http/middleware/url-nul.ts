import type { MiddlewareHandler } from 'hono'
import { invalidInput } from '../../domain/errors.ts'
import type { AppEnv } from '../context.ts'

// PostgreSQL cannot store or compare a NUL character in text, so a query string carrying one
// (only as the escape %00: a raw NUL never survives the request line) is refused before any route
// reads it, as NULs in bodies are by the body reader. Path parameters need no such guard: each
// route's schema only accepts ids and slugs, which have no NUL.
export function refuseNulInQuery(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const url = c.req.url
    const query = url.indexOf('?')
    if (query < 0 || url.indexOf('%00', query) < 0) return next()
    const name = [...new URL(url).searchParams].find(
      ([key, value]) => key.includes('\0') || value.includes('\0'),
    )?.[0]
    const where = name === undefined ? 'query' : `query.${name.replaceAll('\0', '%00')}`
    throw invalidInput(`invalid request: ${where}: NUL characters (%00) are not allowed`, [
      { path: where, message: 'NUL characters (%00) are not allowed' },
    ])
  }
}
