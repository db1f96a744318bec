import { CommanderError } from 'commander'
import { BerthError, type ErrorCode } from '../domain/errors.ts'

// The one place that maps failures to process exit codes (the HTTP side has http/errors.ts).

export const exitCodes = {
  ok: 0,
  /** Anything not foreseen: a server error, an unreachable server, a failed deployment. */
  unexpected: 1,
  /** Bad arguments, bad configuration, or input the server refused as invalid. */
  usage: 2,
  notFound: 3,
  /** Not logged in, a rejected token, or not allowed. */
  auth: 4,
  /** `berth audit verify` found the audit log altered: entries edited or deleted. */
  tampered: 5,
} as const
export type ExitCode = (typeof exitCodes)[keyof typeof exitCodes]

export const exitCodeOfErrorCode: Record<ErrorCode, ExitCode> = {
  invalid_input: exitCodes.usage,
  // The request was too big to accept: the caller has to change what it sends.
  payload_too_large: exitCodes.usage,
  unauthorized: exitCodes.auth,
  forbidden: exitCodes.auth,
  not_found: exitCodes.notFound,
  conflict: exitCodes.notFound,
  rate_limited: exitCodes.unexpected,
  // Not allowed more: the operator or the account's own deletes have to make room.
  quota_exceeded: exitCodes.auth,
  provider_unavailable: exitCodes.unexpected,
  // What was asked cannot run as given (a bad image): the caller has to change it.
  provider_rejected: exitCodes.usage,
  unreachable: exitCodes.unexpected,
  internal: exitCodes.unexpected,
}

export function exitCodeOf(error: unknown): ExitCode {
  if (error instanceof CommanderError) {
    // Commander reports `--help` and `--version` through the same exception as usage errors.
    return error.exitCode === 0 ? exitCodes.ok : exitCodes.usage
  }
  if (error instanceof BerthError) return exitCodeOfErrorCode[error.code] ?? exitCodes.unexpected
  return exitCodes.unexpected
}
