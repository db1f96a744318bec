import type { Context } from 'hono'
import { forbidden } from '../domain/errors.ts'
import type { Account } from '../identity/accounts.ts'
import type { AppEnv } from './context.ts'

/** The account a request acts for; the operator admin token has none. */
export function accountOf(c: Context<AppEnv>): Account {
  const account = c.get('principal')?.account
  if (!account) throw forbidden('this route acts for an account; use a wallet session, an API key or a JWT')
  return account
}

export function ownerLabel(account: Account): string {
  return account.address ?? account.externalSubject ?? account.id
}
