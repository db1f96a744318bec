import { createRoute, z } from '@hono/zod-openapi'
import type { Audit } from '../../audit/audit.ts'
import { type ActorType, actorTypes } from '../../domain/actor.ts'
import { forbidden, invalidInput } from '../../domain/errors.ts'
import { actingAccount } from '../../identity/principal.ts'
import { createRouter } from '../openapi.ts'
import { principalOf } from '../principal.ts'
import { errorResponses, json } from '../schemas.ts'

// The audit log: an owner's own entries (an organisation's need its admin or owner role), or the
// operator's view of everyone's. Oldest (or newest) first, paged by an opaque cursor. Without filters the
// answer also gives the owner's head, so that a client can check the whole chain itself.

const entrySchema = z
  .object({
    id: z.string(),
    owner: z.string().openapi({ description: 'The owner account id' }),
    seq: z.number().int(),
    at: z.iso.datetime(),
    actor: z.object({ type: z.enum(actorTypes), id: z.string() }),
    action: z.string(),
    target: z.string(),
    ip: z.string().nullable(),
    requestId: z.string().nullable(),
    outcome: z.enum(['ok', 'denied']),
    detail: z.record(z.string(), z.unknown()).nullable(),
    prevHash: z.string(),
    hash: z.string(),
  })
  .openapi('AuditEntry')

/** An ISO time the database can compare with: years 1 to 9999. */
const time = z.iso.datetime().refine((text) => {
  const year = new Date(text).getUTCFullYear()
  return year >= 1 && year <= 9999
}, 'must be a time in the years 1 to 9999')

const query = z.object({
  from: time.optional().openapi({ description: 'Entries at or after this time' }),
  to: time.optional().openapi({ description: 'Entries before this time' }),
  action: z
    .string()
    .max(100)
    .optional()
    .openapi({ description: 'An action (deployment.stop), or a prefix ending in * (deployment.*)' }),
  actor: z.string().max(200).optional().openapi({
    description: 'type:id, as in account:0x…, key:<id>, operator:admin, system:billing, chain:0x…',
  }),
  target: z.string().max(200).optional(),
  cursor: z
    .string()
    .regex(/^\d{1,18}$/, 'must be the nextCursor of an earlier page')
    .optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  order: z
    .enum(['asc', 'desc'])
    .default('asc')
    .openapi({ description: 'asc: oldest first; desc: newest first' }),
  owner: z
    .string()
    .max(100)
    .optional()
    .openapi({ description: 'Operator only: the owner (account id, wallet address or organisation slug)' }),
})

const route = createRoute({
  method: 'get',
  path: '/v1/audit',
  tags: ['audit'],
  summary: 'The audit log: who changed what, when, from where, chained by hashes',
  request: { query },
  responses: {
    200: json(
      z.object({
        items: z.array(entrySchema),
        nextCursor: z.string().nullable(),
        head: z
          .object({ seq: z.number().int(), hash: z.string() })
          .nullable()
          .openapi({ description: "The owner's last entry, for checking the chain's end" }),
      }),
      'Entries, in the order asked',
    ),
    ...errorResponses,
  },
})

function actorOf(text: string): { type: ActorType; id: string } {
  const colon = text.indexOf(':')
  const type = text.slice(0, colon) as ActorType
  if (colon < 1 || !actorTypes.includes(type) || colon === text.length - 1) {
    throw invalidInput(`actor: must be type:id with type one of ${actorTypes.join(', ')}`, [
      { path: 'actor', message: 'not type:id' },
    ])
  }
  return { type, id: text.slice(colon + 1) }
}

export function auditRoutes(audit: Audit) {
  const router = createRouter()
  router.openapi(route, async (c) => {
    const principal = principalOf(c)
    const q = c.req.valid('query')
    let ownerId: string | undefined
    if (principal.kind === 'admin') {
      ownerId = q.owner === undefined ? undefined : await audit.ownerIdOf(q.owner)
    } else {
      if (q.owner !== undefined) throw forbidden('owner: only the operator reads other owners’ audit logs')
      // An organisation's log needs the admin or owner role (route-scopes.ts, checked before this).
      ownerId = actingAccount(principal).id
    }
    // The head first: entries written meanwhile come after it, so it never runs ahead of a page.
    const head = ownerId ? await audit.head(ownerId) : null
    const page = await audit.list({
      ...(ownerId ? { ownerId } : {}),
      ...(q.from ? { from: new Date(q.from) } : {}),
      ...(q.to ? { to: new Date(q.to) } : {}),
      ...(q.action ? { action: q.action } : {}),
      ...(q.actor ? { actor: actorOf(q.actor) } : {}),
      ...(q.target ? { target: q.target } : {}),
      ...(q.cursor ? { after: BigInt(q.cursor) } : {}),
      newestFirst: q.order === 'desc',
      limit: q.limit,
    })
    return c.json({ ...page, head }, 200)
  })
  return router
}
