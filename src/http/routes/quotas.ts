import { createRoute, z } from '@hono/zod-openapi'
import { forbidden } from '../../domain/errors.ts'
import { quotaValuesSchema } from '../../quotas/quota-limits.ts'
import type { Quotas } from '../../quotas/quotas.ts'
import { createRouter } from '../openapi.ts'
import { accountOf, principalOf, sourceOfRequest } from '../principal.ts'
import { errorResponses, hexAddress, json } from '../schemas.ts'

// Quotas: an account sees its own limits and use; the operator sees and overrides anyone's.

const quotaNumbers = z.strictObject(
  Object.fromEntries(Object.keys(quotaValuesSchema.shape).map((key) => [key, z.number()])) as Record<
    keyof typeof quotaValuesSchema.shape,
    z.ZodNumber
  >,
)

const quotaView = z
  .object({
    address: z.string().nullable(),
    limits: quotaNumbers,
    overrides: quotaNumbers.partial(),
    usage: quotaNumbers,
  })
  .openapi('Quotas')

const addressParam = z.object({
  address: hexAddress.openapi({ param: { name: 'address', in: 'path' } }),
})

/** Each limit to set, or null to go back to the config's default; limits left out are unchanged. */
const overridesBody = z.strictObject(
  Object.fromEntries(
    Object.entries(quotaValuesSchema.shape).map(([key, schema]) => [key, schema.nullable().optional()]),
  ) as {
    [K in keyof typeof quotaValuesSchema.shape]: z.ZodOptional<
      z.ZodNullable<(typeof quotaValuesSchema.shape)[K]>
    >
  },
)

const routes = {
  own: createRoute({
    method: 'get',
    path: '/v1/quotas',
    tags: ['quotas'],
    summary: "The caller's quota limits and what it uses of them",
    responses: { 200: json(quotaView, 'Limits, overrides and usage'), ...errorResponses },
  }),
  get: createRoute({
    method: 'get',
    path: '/v1/admin/accounts/{address}/quotas',
    tags: ['admin'],
    summary: "A wallet's quota limits and usage (operator token only)",
    request: { params: addressParam },
    responses: { 200: json(quotaView, 'Limits, overrides and usage'), ...errorResponses },
  }),
  put: createRoute({
    method: 'put',
    path: '/v1/admin/accounts/{address}/quotas',
    tags: ['admin'],
    summary: "Override a wallet's quota limits (operator token only)",
    request: {
      params: addressParam,
      body: { required: true, content: { 'application/json': { schema: overridesBody } } },
    },
    responses: { 200: json(quotaView, 'Limits, overrides and usage after the change'), ...errorResponses },
  }),
}

export function quotaRoutes(quotas: Quotas) {
  const router = createRouter()
  const operatorOnly = (kind: string) => {
    if (kind !== 'admin') throw forbidden('quota overrides need the operator admin token')
  }
  router.openapi(routes.own, async (c) => c.json(await quotas.viewOf(accountOf(c)), 200))
  router.openapi(routes.get, async (c) => {
    operatorOnly(principalOf(c).kind)
    return c.json(await quotas.viewOfAddress(c.req.valid('param').address), 200)
  })
  router.openapi(routes.put, async (c) => {
    operatorOnly(principalOf(c).kind)
    const { address } = c.req.valid('param')
    return c.json(await quotas.override(address, c.req.valid('json'), sourceOfRequest(c)), 200)
  })
  return router
}
