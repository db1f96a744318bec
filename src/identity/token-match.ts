import { createHash, timingSafeEqual } from 'node:crypto'

/**
 * A constant-time check of a presented token against a configured one (the admin token, the
 * metrics token). Both are hashed first: digests have equal lengths, which timingSafeEqual needs,
 * and the comparison then says nothing about the configured token's length either.
 */
export function tokenMatcher(expected: string): (presented: string) => boolean {
  const digest = sha256(expected)
  return (presented) => timingSafeEqual(sha256(presented), digest)
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest()
}
