import { forbidden } from '../domain/errors.ts'
import type { Account } from './accounts.ts'

/** Who a request (or a use case) acts as: what authentication established. */
export interface Principal {
  kind: 'session' | 'api_key' | 'external_jwt' | 'admin'
  /** Absent only for the operator admin token. */
  account?: Account
  /** The session id, for logout. */
  sessionId?: string
}

/** The account a principal acts for; the operator admin token has none. */
export function actingAccount(principal: Principal): Account {
  if (!principal.account) {
    throw forbidden('this route acts for an account; use a wallet session, an API key or a JWT')
  }
  return principal.account
}

/** How an account is shown as a deployment's owner: its wallet, else its external subject. */
export function ownerLabel(account: Account): string {
  return account.address ?? account.externalSubject ?? account.id
}
