import { BerthError, type ErrorCode, errorCodes } from '../domain/errors.ts'

// A small fetch wrapper for the berth API, for its clients (the CLI, the fleet agent): JSON in and
// out, bearer auth, and every non-2xx answer turned into an ApiError that carries the server's
// error code (cli/exit-codes.ts maps it).

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown; requestId?: string }
}

export class ApiError extends BerthError {
  readonly status: number
  readonly requestId: string | undefined
  /** The server's error body as received (or one in the same shape), for `--json` output. */
  readonly body: ErrorBody

  constructor(status: number, body: ErrorBody) {
    super(codeOf(status, body.error.code), body.error.message, { details: body.error.details })
    this.name = 'ApiError'
    this.status = status
    this.requestId = body.error.requestId
    this.body = body
  }
}

/** The server could not be reached at all (refused, DNS, reset): not an answer from berth. */
export class ConnectionError extends BerthError {
  constructor(server: string, cause: unknown) {
    super('unreachable', `cannot reach ${server}: ${describeCause(cause)}`, { cause })
    this.name = 'ConnectionError'
  }
}

function describeCause(cause: unknown): string {
  const inner = (cause as { cause?: { code?: string; message?: string } })?.cause
  return inner?.code ?? inner?.message ?? (cause as Error)?.message ?? String(cause)
}

const codeByStatus: Record<number, ErrorCode> = {
  400: 'invalid_input',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  429: 'rate_limited',
  422: 'provider_rejected',
  503: 'provider_unavailable',
}

function codeOf(status: number, code: string): ErrorCode {
  if ((errorCodes as readonly string[]).includes(code)) return code as ErrorCode
  return codeByStatus[status] ?? (status < 500 ? 'invalid_input' : 'internal')
}

export interface RequestOptions {
  body?: unknown
  headers?: Record<string, string>
  query?: Record<string, string | number | boolean | undefined>
  signal?: AbortSignal
}

export interface HttpClient {
  readonly server: string
  request<T>(method: string, path: string, options?: RequestOptions): Promise<T>
  get<T>(path: string, options?: RequestOptions): Promise<T>
  post<T>(path: string, body?: unknown, options?: RequestOptions): Promise<T>
  del<T>(path: string, options?: RequestOptions): Promise<T>
  /** A 2xx response with its body unread, for streams (SSE, logs); errors throw like request(). */
  open(path: string, options?: RequestOptions): Promise<Response>
}

export interface HttpClientOptions {
  server: string
  token?: string
  /** The organisation every request acts for (Berth-Org); absent: the personal account. */
  org?: string
  fetch?: typeof fetch
}

export function createHttpClient(options: HttpClientOptions): HttpClient {
  const doFetch = options.fetch ?? globalThis.fetch
  const server = options.server.replace(/\/+$/, '')

  const send = async (method: string, path: string, opts: RequestOptions = {}): Promise<Response> => {
    const url = new URL(`${server}${path}`)
    for (const [key, value] of Object.entries(opts.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value))
    }
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers }
    if (options.token) headers.authorization = `Bearer ${options.token}`
    if (options.org) headers['berth-org'] = options.org
    let body: string | undefined
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(opts.body)
    }
    let response: Response
    try {
      response = await doFetch(url, { method, headers, body, signal: opts.signal })
    } catch (error) {
      if ((error as Error)?.name === 'AbortError' || (error as Error)?.name === 'TimeoutError') throw error
      throw new ConnectionError(server, error)
    }
    if (!response.ok) throw await toApiError(response)
    return response
  }

  const request = async <T>(method: string, path: string, opts?: RequestOptions): Promise<T> => {
    const response = await send(method, path, opts)
    const text = await response.text()
    if (!text) return undefined as T
    try {
      return JSON.parse(text) as T
    } catch (cause) {
      throw new BerthError(
        'internal',
        `${method} ${path}: the server answered ${response.status} with non-JSON`,
        {
          cause,
        },
      )
    }
  }

  return {
    server,
    request,
    get: (path, opts) => request('GET', path, opts),
    post: (path, body, opts) => request('POST', path, { ...opts, body }),
    del: (path, opts) => request('DELETE', path, opts),
    open: (path, opts) => send('GET', path, opts),
  }
}

/** Reads an error response; anything not in berth's error shape (a proxy page) gets that shape. */
export async function toApiError(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => '')
  try {
    const parsed = JSON.parse(text) as Partial<ErrorBody>
    if (parsed?.error && typeof parsed.error.message === 'string') {
      return new ApiError(response.status, parsed as ErrorBody)
    }
  } catch {
    // not JSON: fall through
  }
  const code = codeOf(response.status, '')
  const message = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`
  return new ApiError(response.status, { error: { code, message } })
}
