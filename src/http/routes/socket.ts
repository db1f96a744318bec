import type { Context, Hono } from 'hono'
import type { UpgradeWebSocket } from 'hono/ws'
import type { Deployments } from '../../deployments/deployments.ts'
import { invalidInput } from '../../domain/errors.ts'
import type { AppEnv } from '../context.ts'
import { principalOf } from '../principal.ts'
import { holdForSocket, type StreamGuard } from '../streams.ts'

// A WebSocket that streams a deployment's messages (events, log lines). Everything that can be
// refused is refused before the upgrade, as a plain HTTP answer: bad input 400, someone else's
// deployment 404, too many open streams 429. Browsers cannot set headers on a WebSocket, so
// `?access_token=` authenticates here. The socket closes with 1008 when its credential stops
// working or the deployment stops being the account's.

export interface SocketStream {
  /** Throws invalid_input naming what is wrong with the path or query. */
  validate(c: Context<AppEnv>): void
  /** Sends messages until it is done or `signal` aborts. */
  run(c: Context<AppEnv>, send: (message: string) => void, signal: AbortSignal): Promise<void>
  /** Said when `run` finishes by itself (a log not followed); absent: it only ends when aborted. */
  endReason?: string
}

export function mountStreamSocket(
  app: Hono<AppEnv>,
  upgradeWebSocket: UpgradeWebSocket<unknown>,
  deps: { deployments: Pick<Deployments, 'get'>; streams: StreamGuard },
  path: string,
  stream: SocketStream,
): void {
  app.get(
    path,
    async (c, next) => {
      stream.validate(c)
      const id = c.req.param('id')!
      await deps.deployments.get(principalOf(c), id)
      if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') {
        throw invalidInput('this route is a WebSocket: send an Upgrade: websocket request')
      }
      c.set('stream', deps.streams.open(c, id))
      await next()
    },
    upgradeWebSocket((c) => {
      const hold = holdForSocket(c.get('stream')!)
      const abort = new AbortController()
      return {
        onOpen: (_event, ws) => {
          hold.opened()
          hold.signal.addEventListener(
            'abort',
            () => {
              abort.abort()
              ws.close(1008, String((hold.signal.reason as Error)?.message ?? 'closed').slice(0, 120))
            },
            { once: true },
          )
          void (async () => {
            try {
              await stream.run(c, (message) => ws.send(message), abort.signal)
              if (!abort.signal.aborted && stream.endReason) ws.close(1000, stream.endReason)
            } catch {
              if (!abort.signal.aborted) ws.close(1011, 'stream failed')
            }
          })()
        },
        onClose: () => {
          abort.abort()
          hold.closed()
        },
        onError: () => abort.abort(),
      }
    }),
  )
}
