import type { Account } from '../identity/accounts.ts'

/** What authentication puts on a request. */
export interface Principal {
  kind: 'session' | 'api_key' | 'external_jwt' | 'admin'
  /** Absent only for the operator admin token. */
  account?: Account
  /** The session id, for logout. */
  sessionId?: string
}

export interface AppEnv {
  Variables: {
    requestId: string
    principal: Principal
  }
}
