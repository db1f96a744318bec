// One error type for everything berth reports on purpose: every error class of berth extends
// BerthError and carries a code. The HTTP layer maps the code to a status (http/errors.ts) and the
// CLI maps it to an exit code (cli/exit-codes.ts); nothing else does.

export const errorCodes = [
  'invalid_input',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'payload_too_large',
  'rate_limited',
  /** Over one of the account's quotas; details name the limit, its value and the current use. */
  'quota_exceeded',
  /** A backend berth depends on (a provider, a chain, an issuer's keys) does not answer now. */
  'provider_unavailable',
  /** A provider refused what it was asked, and will refuse it again (a bad image, no GPU). */
  'provider_rejected',
  /** The berth server itself could not be reached (the CLI's side of a connection). */
  'unreachable',
  'internal',
] as const
export type ErrorCode = (typeof errorCodes)[number]

export class BerthError extends Error {
  readonly code: ErrorCode
  readonly details: unknown

  constructor(code: ErrorCode, message: string, options: { details?: unknown; cause?: unknown } = {}) {
    super(message, { cause: options.cause })
    this.name = 'BerthError'
    this.code = code
    this.details = options.details
  }
}

export const invalidInput = (message: string, details?: unknown) =>
  new BerthError('invalid_input', message, { details })
export const notFound = (what: string) => new BerthError('not_found', `${what} not found`)
export const conflict = (message: string, details?: unknown) =>
  new BerthError('conflict', message, { details })
export const unauthorized = (message = 'authentication required') => new BerthError('unauthorized', message)
export const forbidden = (message: string) => new BerthError('forbidden', message)

/** A write was attempted with a lease that has expired or been taken over (fencing). */
export class LeaseLostError extends BerthError {
  constructor(deploymentId: string) {
    super('conflict', `lease on deployment ${deploymentId} was lost; the write was refused`)
    this.name = 'LeaseLostError'
  }
}

/** Flattens zod-style issues into `{path, message}` pairs for error details. */
export function describeIssues(
  issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>,
): Array<{ path: string; message: string }> {
  return issues.map((issue) => ({
    path: issue.path.map(String).join('.') || '(root)',
    message: issue.message,
  }))
}

export function summarizeIssues(issues: Array<{ path: string; message: string }>): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join('; ')
}
