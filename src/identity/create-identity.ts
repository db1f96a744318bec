import type { Config } from '../config/schema.ts'
import type { Db } from '../db/client.ts'
import type { Vault } from '../secrets/vault.ts'
import { type ApiKeys, createApiKeys } from './api-keys.ts'
import { createAuthenticator } from './authenticate.ts'
import type { Authenticator } from './authenticator.ts'
import { createExternalJwtVerifier } from './external-jwt.ts'
import { createOrgs, type Orgs } from './orgs.ts'
import { createSessions, type Sessions } from './sessions.ts'
import { createSiwe, type Siwe } from './siwe.ts'

export interface IdentityOptions {
  db: Db
  config: Config
  /**
   * Admission of a new API key against the account's quota: refuses, or admits until the key is
   * written. Quotas sit above identity (they find accounts through it), so only the shape is named.
   */
  quotas: { admitApiKey(accountId: string): Promise<() => void> }
  /** The clock for every expiry decision; tests move it instead of sleeping. */
  now?: () => Date
  /** Seals berth's own secrets (the session secret). */
  vault: Vault
}

/** The identity services; http/ turns them into routes and middleware. */
export interface Identity {
  authenticator: Authenticator
  siwe: Siwe
  sessions: Sessions
  apiKeys: ApiKeys
  orgs: Orgs
}

/** Reads (or on first start creates) the session secret, so it needs the database. */
export async function createIdentity(options: IdentityOptions): Promise<Identity> {
  const { db, config } = options
  const now = options.now ?? (() => new Date())
  const sessions = await createSessions({ db, config, now, vault: options.vault })
  const apiKeys = createApiKeys({ db, now, admit: (accountId) => options.quotas.admitApiKey(accountId) })
  const external = config.externalJwt
    ? createExternalJwtVerifier({
        db,
        settings: config.externalJwt,
        now,
        clockSkewSeconds: config.siwe.clockSkewSeconds,
      })
    : undefined
  const siwe = createSiwe({ db, config, sessions, now })
  const orgs = createOrgs(db)
  return {
    authenticator: createAuthenticator({ adminToken: config.adminToken, sessions, apiKeys, orgs, external }),
    siwe,
    sessions,
    apiKeys,
    orgs,
  }
}
