import { createRoute, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { orgRoles } from '../../domain/roles.ts'
import type { Membership, Orgs } from '../../identity/orgs.ts'
import { actingAccount, requireScope } from '../../identity/principal.ts'
import type { AppEnv } from '../context.ts'
import { createRouter } from '../openapi.ts'
import { principalOf, sourceOfRequest } from '../principal.ts'
import { errorResponses, hexAddress, json, jsonBody } from '../schemas.ts'

// Organisations and their members. A caller who is not a member gets 404 for the organisation and
// everything under it; managing members needs the admin or owner role, and only an owner may
// make or unmake owners. The last owner can be neither removed nor demoted. Only an owner may
// delete the organisation.

const orgSchema = z
  .object({ id: z.string(), name: z.string(), slug: z.string(), role: z.enum(orgRoles) })
  .openapi('Org')
const memberSchema = z
  .object({ address: z.string(), role: z.enum(orgRoles), addedAt: z.string() })
  .openapi('OrgMember')
const slug = z
  .string()
  .min(2)
  .max(40)
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'must be lower-case letters, digits and "-", as in a URL')
const orgParam = z.object({
  org: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: 'org', in: 'path' } }),
})
const memberParams = orgParam.extend({
  address: hexAddress.openapi({ param: { name: 'address', in: 'path' } }),
})

const routes = {
  create: createRoute({
    method: 'post',
    path: '/v1/orgs',
    tags: ['orgs'],
    summary: 'Create an organisation; its creator is its owner',
    request: { body: jsonBody(z.strictObject({ name: z.string().min(1).max(100), slug })) },
    responses: { 201: json(orgSchema, 'The organisation'), ...errorResponses },
  }),
  list: createRoute({
    method: 'get',
    path: '/v1/orgs',
    tags: ['orgs'],
    summary: "The organisations the caller is a member of, with the caller's role",
    responses: { 200: json(z.object({ items: z.array(orgSchema) }), 'Organisations'), ...errorResponses },
  }),
  get: createRoute({
    method: 'get',
    path: '/v1/orgs/{org}',
    tags: ['orgs'],
    summary: 'An organisation, by id or slug',
    request: { params: orgParam },
    responses: { 200: json(orgSchema, 'The organisation'), ...errorResponses },
  }),
  delete: createRoute({
    method: 'delete',
    path: '/v1/orgs/{org}',
    tags: ['orgs'],
    summary: 'Delete an organisation (owner only; it must have no deployments and no balance left)',
    request: { params: orgParam },
    responses: { 204: { description: 'Deleted' }, ...errorResponses },
  }),
  members: createRoute({
    method: 'get',
    path: '/v1/orgs/{org}/members',
    tags: ['orgs'],
    summary: "An organisation's members and their roles",
    request: { params: orgParam },
    responses: { 200: json(z.object({ items: z.array(memberSchema) }), 'Members'), ...errorResponses },
  }),
  add: createRoute({
    method: 'post',
    path: '/v1/orgs/{org}/members',
    tags: ['orgs'],
    summary: 'Add a member by wallet address (it need not have signed in yet)',
    request: {
      params: orgParam,
      body: jsonBody(z.strictObject({ address: hexAddress, role: z.enum(orgRoles) })),
    },
    responses: { 201: json(memberSchema, 'The member'), ...errorResponses },
  }),
  change: createRoute({
    method: 'patch',
    path: '/v1/orgs/{org}/members/{address}',
    tags: ['orgs'],
    summary: "Change a member's role",
    request: { params: memberParams, body: jsonBody(z.strictObject({ role: z.enum(orgRoles) })) },
    responses: { 200: json(memberSchema, 'The member'), ...errorResponses },
  }),
  remove: createRoute({
    method: 'delete',
    path: '/v1/orgs/{org}/members/{address}',
    tags: ['orgs'],
    summary: 'Remove a member',
    request: { params: memberParams },
    responses: { 204: { description: 'Removed' }, ...errorResponses },
  }),
}

const orgView = ({ org, role }: Membership) => ({ id: org.id, name: org.name, slug: org.slug, role })
const memberView = (m: { address: string; role: (typeof orgRoles)[number]; addedAt: Date }) => ({
  ...m,
  addedAt: m.addedAt.toISOString(),
})

export function orgRoutes(orgs: Orgs) {
  const router = createRouter()
  /** The caller's membership of the organisation in the path; 404 for anyone else. */
  const memberOf = async (c: Context<AppEnv>, ref: string) => {
    const membership = await orgs.membership(actingAccount(personal(c)), ref)
    // A member refused here (adding members, deleting it) shows up in the organisation's log.
    c.set('auditOwner', membership.org.id)
    return membership
  }
  /** Managing members: admin or owner; and only an owner touches the owner role. */
  const manage = (c: Context<AppEnv>, membership: Membership, touchesOwner: boolean) => {
    const acting = { ...principalOf(c), org: { account: membership.org, role: membership.role } }
    requireScope(acting, touchesOwner ? 'org:owner' : 'org:admin')
  }

  router.openapi(routes.create, async (c) => {
    const membership = await orgs.create(actingAccount(personal(c)), c.req.valid('json'), sourceOfRequest(c))
    return c.json(orgView(membership), 201)
  })
  router.openapi(routes.list, async (c) =>
    c.json({ items: await orgs.listFor(actingAccount(personal(c))) }, 200),
  )
  router.openapi(routes.get, async (c) => c.json(orgView(await memberOf(c, c.req.valid('param').org)), 200))
  router.openapi(routes.delete, async (c) => {
    const membership = await memberOf(c, c.req.valid('param').org)
    manage(c, membership, true)
    await orgs.remove(membership.org, sourceOfRequest(c))
    return c.body(null, 204)
  })
  router.openapi(routes.members, async (c) => {
    const membership = await memberOf(c, c.req.valid('param').org)
    return c.json({ items: (await orgs.members(membership.org.id)).map(memberView) }, 200)
  })
  router.openapi(routes.add, async (c) => {
    const membership = await memberOf(c, c.req.valid('param').org)
    const { address: member, role } = c.req.valid('json')
    manage(c, membership, role === 'owner')
    return c.json(memberView(await orgs.addMember(membership.org.id, member, role, sourceOfRequest(c))), 201)
  })
  router.openapi(routes.change, async (c) => {
    const { org, address: member } = c.req.valid('param')
    const membership = await memberOf(c, org)
    const { role } = c.req.valid('json')
    const current = await orgs.roleOf(membership.org.id, member)
    manage(c, membership, role === 'owner' || current === 'owner')
    return c.json(memberView(await orgs.changeRole(membership.org.id, member, role, sourceOfRequest(c))), 200)
  })
  router.openapi(routes.remove, async (c) => {
    const { org, address: member } = c.req.valid('param')
    const membership = await memberOf(c, org)
    // Anyone may leave; removing someone else is managing the members.
    const leaving = member.toLowerCase() === actingAccount(personal(c)).address
    if (!leaving) manage(c, membership, (await orgs.roleOf(membership.org.id, member)) === 'owner')
    await orgs.removeMember(membership.org.id, member, sourceOfRequest(c))
    return c.body(null, 204)
  })
  return router
}

/** The caller in person: organisation routes name the organisation in the path, not Berth-Org. */
function personal(c: Context<AppEnv>) {
  const { org: _, ...person } = principalOf(c)
  return person
}
