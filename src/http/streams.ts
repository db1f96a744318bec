import type { Context } from 'hono'
import type { Logger } from 'pino'
import type { Config } from '../config/schema.ts'
import type { Deployments } from '../deployments/deployments.ts'
import type { Authenticator } from '../identity/authenticator.ts'
import type { Orgs } from '../identity/orgs.ts'
import { actingAccount, type Principal } from '../identity/principal.ts'
import type { AppEnv, OpenStream } from './context.ts'

import { actingFor } from './middleware/acting-org.ts'
import { rateLimited } from './middleware/rate-limit.ts'
import { accountOf } from './principal.ts'

// Long-lived answers (SSE, WebSocket, followed logs) hold a connection and a database follower
// each, so an account may have only so many open at once, and each is looked at again every few
// seconds: when its credential stops working (logout, a deleted key, an expired session) or its
// deployment is no longer the account's (an NFT changed hands), it is closed. The check is
// level-triggered (it asks the database), so it works whichever replica revoked what.

interface Registered {
  accountId: string
  deploymentId: string
  authorization: string | undefined
  queryToken: string | undefined
  /** The organisation the stream acts for (Berth-Org), checked again with the credential. */
  orgRef: string | undefined
  abort: AbortController
}

export interface StreamGuard {
  /** Registers a stream of the request's account on a deployment; 429 beyond the account's cap. */
  open(c: Context<AppEnv>, deploymentId: string): OpenStream
  /** Checks every open stream now (the timer does it every `recheckSeconds`). */
  recheck(): Promise<void>
  stop(): void
}

export function createStreamGuard(deps: {
  settings: Config['streams']
  authenticator: Authenticator
  orgs: Pick<Orgs, 'membership'>
  deployments: Pick<Deployments, 'get'>
  logger: Logger
}): StreamGuard {
  const open = new Set<Registered>()
  const countOf = (accountId: string) => [...open].filter((s) => s.accountId === accountId).length

  const checkOne = async (stream: Registered) => {
    let principal: Principal
    try {
      principal = await deps.authenticator.authenticate(stream.authorization, stream.queryToken)
      // A member removed from the organisation loses its streams too.
      principal = await actingFor(deps.orgs, principal, stream.orgRef)
    } catch {
      stream.abort.abort(new Error('the stream’s credentials are no longer valid'))
      return
    }
    try {
      if (actingAccount(principal).id !== stream.accountId) throw new Error('another account')
      await deps.deployments.get(principal, stream.deploymentId)
    } catch {
      stream.abort.abort(new Error('the deployment is no longer this account’s'))
    }
  }

  const recheck = async () => {
    await Promise.allSettled([...open].filter((s) => !s.abort.signal.aborted).map(checkOne))
  }
  const timer = setInterval(
    () => void recheck().catch((e: unknown) => deps.logger.warn({ err: e }, 'stream recheck failed')),
    deps.settings.recheckSeconds * 1000,
  )
  timer.unref()

  return {
    open(c, deploymentId) {
      const account = accountOf(c)
      if (countOf(account.id) >= deps.settings.perAccount) {
        throw rateLimited(deps.settings.recheckSeconds, `open streams (at most ${deps.settings.perAccount})`)
      }
      const credential = c.get('credential')
      const stream: Registered = {
        accountId: account.id,
        deploymentId,
        authorization: credential?.authorization,
        queryToken: credential?.queryToken,
        orgRef: credential?.orgRef,
        abort: new AbortController(),
      }
      open.add(stream)
      return { signal: stream.abort.signal, release: () => open.delete(stream) }
    },
    recheck,
    stop() {
      clearInterval(timer)
      for (const stream of open) stream.abort.abort(new Error('berth is stopping'))
      open.clear()
    },
  }
}

/** A WebSocket that has not completed its handshake by then never will: its hold is released. */
const HANDSHAKE_MS = 10_000

/**
 * A stream hold for a WebSocket: taken before the upgrade (so a 429 is a plain HTTP answer), kept
 * while the socket is open, and released when it closes, or when the handshake never completes.
 */
export function holdForSocket(held: OpenStream) {
  const unopened = setTimeout(() => held.release(), HANDSHAKE_MS)
  unopened.unref()
  return {
    signal: held.signal,
    opened: () => clearTimeout(unopened),
    closed: () => {
      clearTimeout(unopened)
      held.release()
    },
  }
}
