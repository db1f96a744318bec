import assert from 'node:assert/strict'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { type RunningBerth, startBerth } from './server.ts'

// The real `berth serve` for the Sign-In with Ethereum and session-token e2e tests, and how they
// check a refusal.

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
export type Body = any

export const SIWE_SESSION_SECRET = 'e2e-siwe-session-secret-0123456789abcdef'

/**
 * These tests sign in hundreds of times from one address on purpose (replays, races); the limit
 * itself is tested in e2e-limits.test.ts.
 */
export const SIGN_IN_UNLIMITED: Record<string, string> = {
  BERTH_RATE_LIMITS__SIGN_IN_PER_MINUTE: '100000',
  BERTH_RATE_LIMITS__SIGN_IN_BURST: '100000',
}

/** A berth with sign-in unlimited and SIWE_SESSION_SECRET as its session secret. */
export function startSiweBerth(): Promise<RunningBerth> {
  // A known session secret lets the test forge tokens (expired ones) exactly as the server would.
  return startBerth({
    env: { BERTH_SESSION_SECRET: SIWE_SESSION_SECRET, BERTH_LOG_LEVEL: 'warn', ...SIGN_IN_UNLIMITED },
  })
}

export function assertError(
  response: { status: number; body: Body },
  status: number,
  code: string,
  pattern?: RegExp,
) {
  assert.equal(response.status, status, JSON.stringify(response.body))
  assert.equal(response.body.error?.code, code, JSON.stringify(response.body))
  assert.equal(typeof response.body.error.requestId, 'string')
  if (pattern) assert.match(response.body.error.message, pattern)
}

export function wallet(): PrivateKeyAccount {
  return privateKeyToAccount(generatePrivateKey())
}
