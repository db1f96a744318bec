import type { OpenAPIHono } from '@hono/zod-openapi'
import type { Config } from '../config/schema.ts'
import type { Db } from '../db/client.ts'
import type { AppEnv } from '../http/context.ts'
import { createIdentityRouter } from '../http/routes/identity.ts'
import { createApiKeys } from './api-keys.ts'
import { createAuthenticator } from './authenticate.ts'
import type { Authenticator } from './authenticator.ts'
import { createExternalJwtVerifier } from './external-jwt.ts'
import { createSessions } from './sessions.ts'
import { createSiwe } from './siwe.ts'

export interface IdentityOptions {
  db: Db
  config: Config
  /** The clock for every expiry decision; tests move it instead of sleeping. */
  now?: () => Date
}

export interface Identity {
  authenticator: Authenticator
  /** The /v1/auth/* and /v1/api-keys routes, with full paths: mount it at `/`. */
  router: OpenAPIHono<AppEnv>
}

/** Reads (or on first start creates) the session secret, so it needs the database. */
export async function createIdentity(options: IdentityOptions): Promise<Identity> {
  const { db, config } = options
  const now = options.now ?? (() => new Date())
  const sessions = await createSessions({ db, config, now })
  const apiKeys = createApiKeys({ db, now })
  const external = config.externalJwt
    ? createExternalJwtVerifier({
        db,
        settings: config.externalJwt,
        now,
        clockSkewSeconds: config.siwe.clockSkewSeconds,
      })
    : undefined
  const siwe = createSiwe({ db, config, sessions, now })
  return {
    authenticator: createAuthenticator({ adminToken: config.adminToken, sessions, apiKeys, external }),
    router: createIdentityRouter({ siwe, sessions, apiKeys }),
  }
}
