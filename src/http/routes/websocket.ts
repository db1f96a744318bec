import type { Hono } from 'hono'
import type { UpgradeWebSocket } from 'hono/ws'
import type { Deployments } from '../../deployments/deployments.ts'
import { invalidInput } from '../../domain/errors.ts'
import type { AppEnv } from '../context.ts'
import { principalOf } from '../principal.ts'
import { idParam } from '../schemas.ts'
import { eventView } from '../views.ts'
import { resumeFrom } from './events.ts'

/**
 * `GET /v1/deployments/{id}/ws`: the same messages as the SSE stream, one JSON event per WebSocket
 * message. Browsers cannot set headers on a WebSocket, so `?access_token=` authenticates too, and
 * `?after=<seq>` resumes.
 */
export function mountEventSocket(
  app: Hono<AppEnv>,
  upgradeWebSocket: UpgradeWebSocket<unknown>,
  deployments: Deployments,
): void {
  app.get(
    '/v1/deployments/:id/ws',
    async (c, next) => {
      // Ownership is checked before the upgrade so that a stranger gets a plain 404.
      const id = c.req.param('id')
      const parsed = idParam.safeParse({ id })
      if (!parsed.success)
        throw invalidInput('invalid request: id: must be a UUID', [{ path: 'id', message: 'must be a UUID' }])
      await deployments.get(principalOf(c), id)
      await next()
    },
    upgradeWebSocket((c) => {
      const id = c.req.param('id')!
      const afterParam = Number.parseInt(c.req.query('after') ?? '', 10)
      const after = resumeFrom(
        c.req.header('last-event-id'),
        Number.isFinite(afterParam) ? afterParam : undefined,
      )
      const abort = new AbortController()
      return {
        onOpen: (_event, ws) => {
          void (async () => {
            try {
              const events = await deployments.followEvents(principalOf(c), id, after, abort.signal)
              for await (const event of events) {
                ws.send(JSON.stringify(eventView(event)))
              }
            } catch {
              ws.close(1011, 'event stream failed')
            }
          })()
        },
        onClose: () => abort.abort(),
        onError: () => abort.abort(),
      }
    }),
  )
}
