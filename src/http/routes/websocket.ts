import type { Hono } from 'hono'
import type { UpgradeWebSocket } from 'hono/ws'
import type { Deployments } from '../../deployments/deployments.ts'
import { invalidInput } from '../../domain/errors.ts'
import type { AppEnv } from '../context.ts'
import { principalOf } from '../principal.ts'
import { idParam } from '../schemas.ts'
import type { StreamGuard } from '../streams.ts'
import { eventView } from '../views.ts'
import { resumeFrom } from './events.ts'
import { mountStreamSocket } from './socket.ts'

/**
 * `GET /v1/deployments/{id}/ws`: the same messages as the SSE stream, one JSON event per WebSocket
 * message; `?after=<seq>` resumes.
 */
export function mountEventSocket(
  app: Hono<AppEnv>,
  upgradeWebSocket: UpgradeWebSocket<unknown>,
  deps: { deployments: Deployments; streams: StreamGuard },
): void {
  mountStreamSocket(app, upgradeWebSocket, deps, '/v1/deployments/:id/ws', {
    validate(c) {
      if (!idParam.safeParse({ id: c.req.param('id') }).success) {
        throw invalidInput('invalid request: id: must be a UUID', [{ path: 'id', message: 'must be a UUID' }])
      }
    },
    async run(c, send, signal) {
      const afterParam = Number.parseInt(c.req.query('after') ?? '', 10)
      const after = resumeFrom(
        c.req.header('last-event-id'),
        Number.isFinite(afterParam) ? afterParam : undefined,
      )
      const events = await deps.deployments.followEvents(principalOf(c), c.req.param('id')!, after, signal)
      for await (const event of events) send(JSON.stringify(eventView(event)))
    },
  })
}
