import type { OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import type { Config } from '../../config/schema.ts'
import type { AppEnv } from '../context.ts'
import { rateLimit, TokenBuckets } from './rate-limit.ts'

// Which requests are limited, and by what key. Sign-in is open to anybody, so it is limited per
// client address, and nonces (each a row until it expires) for everybody together as well, which
// bounds the nonce table whoever asks. Writes are limited per account, after authentication.

/** Methods that change nothing: not limited as writes, not recorded when refused. */
export const READS = new Set(['GET', 'HEAD', 'OPTIONS'])

export function mountRateLimits(
  app: OpenAPIHono<AppEnv>,
  limits: Pick<Config, 'rateLimits'>,
  mountAuthentication: () => void,
): void {
  const settings = limits.rateLimits
  const signIns = new TokenBuckets({ perMinute: settings.signInPerMinute, burst: settings.signInBurst })
  const nonces = new TokenBuckets({ perMinute: settings.noncesPerMinute, burst: settings.noncesPerMinute })
  const writes = new TokenBuckets({ perMinute: settings.writesPerMinute, burst: settings.writeBurst })
  const address = (c: Context<AppEnv>) => c.get('clientIp')

  // Enrolling a node is a signed message like a sign-in, open to anybody: limited the same way.
  for (const path of ['/v1/auth/nonce', '/v1/auth/verify', '/v1/fleet/enroll']) {
    app.use(path, rateLimit(signIns, address, 'sign-in requests from this address'))
  }
  app.use(
    '/v1/auth/nonce',
    rateLimit(nonces, () => 'everyone', 'sign-ins at the moment'),
  )
  mountAuthentication()
  // The operator's admin token is not limited: it has no account, and it is the operator.
  const accountWriting = (c: Context<AppEnv>) =>
    READS.has(c.req.method) ? undefined : c.get('principal')?.account?.id
  app.use('/v1/*', rateLimit(writes, accountWriting, 'writes from this account'))
}
