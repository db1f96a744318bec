import { createRoute, z } from '@hono/zod-openapi'
import { streamSSE } from 'hono/streaming'
import { forbidden } from '../../domain/errors.ts'
import { NODE_HEADER, TIMESTAMP_HEADER } from '../../fleet/assignment-stream.ts'
import type { Fleet } from '../../fleet/fleet.ts'
import { SIGNATURE_HEADER } from '../../fleet/heartbeats.ts'
import { installScriptFor } from '../../fleet/install-script.ts'
import { labelsSchema, nodeNameSchema } from '../../fleet/node-schemas.ts'
import { createRouter } from '../openapi.ts'
import { principalOf } from '../principal.ts'
import { errorResponses, json, jsonBody } from '../schemas.ts'

// What fleet agents call: enrollment (a wallet-signed message, no bearer token) and heartbeats
// (signed with the agent's own key, no bearer token); and the operator's join tokens.

/** A comment line this often keeps proxies from closing an idle assignment stream. */
const ASSIGNMENT_KEEPALIVE_MS = 15_000

const enrollBody = z.strictObject({
  /** A Sign-In with Ethereum message stating the enrollment, naming the agent key as its resource. */
  message: z.string().min(1).max(4096),
  signature: z.string().regex(/^0x[0-9a-fA-F]+$/, 'must be a 0x-prefixed hex signature'),
  name: nodeNameSchema.optional(),
  labels: labelsSchema.optional(),
  joinToken: z.string().min(1).max(256).optional(),
})

const enrolledSchema = z
  .object({
    nodeId: z.string(),
    name: z.string(),
    operator: z.string(),
    reenrolled: z.boolean(),
    heartbeatSeconds: z.number(),
    clockSkewSeconds: z.number(),
  })
  .openapi('NodeEnrollment')

const joinTokenBody = z.strictObject({
  note: z.string().min(1).max(200).optional(),
  maxUses: z.number().int().min(1).max(1_000_000).optional(),
  expiresInSeconds: z
    .number()
    .int()
    .min(60)
    .max(365 * 86400)
    .default(7 * 86400),
})

const routes = {
  enroll: createRoute({
    method: 'post',
    path: '/v1/fleet/enroll',
    tags: ['fleet'],
    summary: "Enroll a node: the operator's wallet signs a message naming the agent's Ed25519 key",
    security: [],
    request: { body: jsonBody(enrollBody) },
    responses: { 200: json(enrolledSchema, 'The node, new or found again by its key'), ...errorResponses },
  }),
  heartbeat: createRoute({
    method: 'post',
    path: '/v1/fleet/heartbeats',
    tags: ['fleet'],
    summary: `A node's heartbeat, signed with its agent key (header ${SIGNATURE_HEADER}: base64 Ed25519 signature of the body)`,
    security: [],
    responses: {
      204: { description: 'Accepted' },
      409: json(
        z.object({}).passthrough(),
        'A replayed or reordered heartbeat (its sequence is not above the last)',
      ),
      ...errorResponses,
    },
  }),
  installScript: createRoute({
    method: 'get',
    path: '/v1/fleet/install.sh',
    tags: ['fleet'],
    summary: 'A shell script that installs the berth agent and its systemd unit on a node',
    security: [],
    responses: {
      200: { description: 'The script', content: { 'text/x-shellscript': { schema: z.string() } } },
    },
  }),
  assignments: createRoute({
    method: 'get',
    path: '/v1/fleet/assignments',
    tags: ['fleet'],
    summary: `A node's assignments as server-sent events (\`assignments\`: the whole list, again on every change). Opened with headers ${NODE_HEADER}, ${TIMESTAMP_HEADER} and ${SIGNATURE_HEADER}: the agent key's signature of "berth-assignments <node id> <timestamp>"`,
    security: [],
    responses: {
      200: { description: 'The stream', content: { 'text/event-stream': { schema: z.string() } } },
      ...errorResponses,
    },
  }),
  logs: createRoute({
    method: 'post',
    path: '/v1/fleet/logs',
    tags: ['fleet'],
    summary: `A batch of log lines an agent sends for a log request (header ${SIGNATURE_HEADER}: its agent key's signature of the body); 404 once nobody reads them`,
    security: [],
    responses: { 204: { description: 'Accepted' }, ...errorResponses },
  }),
  joinToken: createRoute({
    method: 'post',
    path: '/v1/admin/fleet/join-tokens',
    tags: ['admin'],
    summary: 'Make a join token that admits nodes to a closed fleet (operator token only; shown once)',
    request: { body: jsonBody(joinTokenBody) },
    responses: {
      201: json(
        z.object({
          id: z.string(),
          token: z.string(),
          usesLeft: z.number().nullable(),
          expiresAt: z.string(),
        }),
        'The token',
      ),
      ...errorResponses,
    },
  }),
}

export function fleetRoutes(fleet: Fleet) {
  const router = createRouter()
  router.openapi(routes.enroll, async (c) => {
    const input = c.req.valid('json')
    const enrolled = await fleet.enroll(
      { ...input, signature: input.signature as `0x${string}` },
      { ip: c.get('clientIp'), requestId: c.get('requestId') },
    )
    return c.json(
      {
        ...enrolled,
        heartbeatSeconds: fleet.settings.heartbeatSeconds,
        clockSkewSeconds: fleet.settings.clockSkewSeconds,
      },
      200,
    )
  })
  router.openapi(routes.heartbeat, async (c) => {
    await fleet.heartbeats.ingest(await c.req.text(), c.req.header(SIGNATURE_HEADER))
    return c.body(null, 204)
  })
  router.openapi(routes.assignments, async (c) => {
    const nodeId = await fleet.streams.authenticate({
      node: c.req.header(NODE_HEADER),
      timestamp: c.req.header(TIMESTAMP_HEADER),
      signature: c.req.header(SIGNATURE_HEADER),
    })
    return streamSSE(c, async (stream) => {
      const followed = fleet.streams.follow(nodeId, (message) =>
        stream.writeSSE({ event: message.event, data: JSON.stringify(message.data) }),
      )
      stream.onAbort(followed.close)
      const keepalive = setInterval(
        () => void stream.write(': keepalive\n\n').catch(followed.close),
        ASSIGNMENT_KEEPALIVE_MS,
      )
      try {
        // Ends when the agent goes (a failed write) or another stream of the node replaces this one.
        await followed.done.catch(() => undefined)
      } finally {
        clearInterval(keepalive)
      }
    }) as never
  })
  router.openapi(routes.logs, async (c) => {
    await fleet.logs.accept(await c.req.text(), c.req.header(SIGNATURE_HEADER))
    return c.body(null, 204)
  })
  router.openapi(routes.installScript, async (c) =>
    c.body(installScriptFor(fleet.publicUrl, fleet.settings.agentPackage), 200, {
      'content-type': 'text/x-shellscript; charset=utf-8',
    }),
  )
  router.openapi(routes.joinToken, async (c) => {
    if (principalOf(c).kind !== 'admin') throw forbidden('join tokens need the operator admin token')
    const issued = await fleet.createJoinToken(c.req.valid('json'))
    return c.json({ ...issued, expiresAt: issued.expiresAt.toISOString() }, 201)
  })
  return router
}
