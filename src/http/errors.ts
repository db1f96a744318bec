import type { Context } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { BerthError, type ErrorCode } from '../domain/errors.ts'
import { ProviderError } from '../providers/provider.ts'

// The one place that maps berth's error codes to HTTP statuses.
export const httpStatusOf: Record<ErrorCode, ContentfulStatusCode> = {
  invalid_input: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  quota_exceeded: 403,
  provider_unavailable: 503,
  provider_rejected: 422,
  // Only the CLI meets it (it could not reach berth); a server never answers with it.
  unreachable: 503,
  internal: 500,
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown; requestId: string }
}

export function errorResponse(c: Context, error: BerthError) {
  const body: ErrorBody = {
    error: {
      code: error.code,
      message: error.message,
      ...(error.details === undefined ? {} : { details: error.details }),
      requestId: c.get('requestId') ?? 'unknown',
    },
  }
  return c.json(body, httpStatusOf[error.code])
}

/**
 * Turns anything thrown into the BerthError a client is shown. Unknown failures become `internal`
 * with no internals; a provider's own text (an engine's message, a socket path) is replaced by a
 * plain sentence, since it describes berth's inside, not the caller's request.
 */
export function toBerthError(error: unknown): BerthError {
  if (error instanceof ProviderError) {
    const message =
      error.code === 'provider_unavailable'
        ? "the deployment's provider does not answer now; try again later"
        : "the deployment's provider refused the operation"
    return new BerthError(error.code, message, { cause: error })
  }
  if (error instanceof BerthError) return error
  return new BerthError('internal', 'internal error', { cause: error })
}

/** Whether the client was not told what went wrong, so the log must say it (with the request id). */
export function hidesDetail(shown: BerthError, thrown: unknown): boolean {
  return shown !== thrown
}
