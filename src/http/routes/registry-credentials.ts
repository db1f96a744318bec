import { createRoute, z } from '@hono/zod-openapi'
import { type RegistryCredentials, registryCredentialInput } from '../../deployments/registry-credentials.ts'
import { createRouter } from '../openapi.ts'
import { principalOf } from '../principal.ts'
import { errorResponses, idParam, json } from '../schemas.ts'

// An owner's credentials for its private registries: set (the password is never shown again),
// listed by registry and user name, removed. Deployments of that owner pull with them.

const credentialView = z
  .object({
    id: z.string(),
    registry: z.string(),
    username: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('RegistryCredential')

const listCredentials = createRoute({
  method: 'get',
  path: '/v1/registry-credentials',
  tags: ['deployments'],
  summary: "The owner's private registry credentials (never their passwords)",
  responses: {
    200: json(z.object({ items: z.array(credentialView) }), 'The credentials'),
    ...errorResponses,
  },
})

const putCredential = createRoute({
  method: 'post',
  path: '/v1/registry-credentials',
  tags: ['deployments'],
  summary: "Sets the owner's credentials for one registry (kept sealed; replaces earlier ones there)",
  request: { body: { required: true, content: { 'application/json': { schema: registryCredentialInput } } } },
  responses: { 200: json(credentialView, 'The credentials, without the password'), ...errorResponses },
})

const deleteCredential = createRoute({
  method: 'delete',
  path: '/v1/registry-credentials/{id}',
  tags: ['deployments'],
  summary: 'Removes registry credentials',
  request: { params: idParam },
  responses: { 204: { description: 'Removed' }, ...errorResponses },
})

export function registryCredentialRoutes(credentials: RegistryCredentials) {
  const router = createRouter()
  router.openapi(listCredentials, async (c) => c.json({ items: await credentials.list(principalOf(c)) }, 200))
  router.openapi(putCredential, async (c) =>
    c.json(await credentials.put(principalOf(c), c.req.valid('json')), 200),
  )
  router.openapi(deleteCredential, async (c) => {
    await credentials.remove(principalOf(c), c.req.valid('param').id)
    return c.body(null, 204)
  })
  return router
}
