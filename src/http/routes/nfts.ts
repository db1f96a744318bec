import { createRoute, z } from '@hono/zod-openapi'
import type { Deployments } from '../../deployments/deployments.ts'
import { dnsLabel, fitsUint256, TOKEN_ID_PATTERN } from '../../domain/spec.ts'
import { createRouter } from '../openapi.ts'
import { principalOf } from '../principal.ts'
import { deploymentSchema, errorResponses, errorSchema, hexAddress, json } from '../schemas.ts'
import { deploymentView } from '../views.ts'

// NFT-bound deployments: the caller's list, and "one agent per token" from a collection template.
// (What a transfer tells the old holder is in its notifications: routes/notifications.ts.)

export interface NftRoutesDeps {
  deployments: Deployments
}

const tokenParams = z.object({
  chainId: z.coerce
    .number()
    .int()
    .min(1)
    .max(2 ** 31 - 1)
    .openapi({ param: { name: 'chainId', in: 'path' } }),
  contract: hexAddress
    .transform((a) => a.toLowerCase() as `0x${string}`)
    .openapi({ param: { name: 'contract', in: 'path' } }),
  tokenId: z
    .string()
    .regex(TOKEN_ID_PATTERN, 'must be a decimal token id without leading zeros')
    .refine(fitsUint256, 'must fit in uint256')
    .openapi({ param: { name: 'tokenId', in: 'path' } }),
})

const routes = {
  list: createRoute({
    method: 'get',
    path: '/v1/nfts',
    tags: ['nfts'],
    summary: "The caller's NFT-bound deployments",
    responses: {
      200: json(z.object({ items: z.array(deploymentSchema) }), 'Deployments'),
      ...errorResponses,
    },
  }),
  deploy: createRoute({
    method: 'post',
    path: '/v1/nfts/{chainId}/{contract}/{tokenId}/deploy',
    tags: ['nfts'],
    summary: "Deploy the collection's template for a token the caller holds",
    request: {
      params: tokenParams,
      body: {
        required: false,
        content: {
          'application/json': {
            schema: z.strictObject({
              name: dnsLabel.optional(),
              provider: z.string().min(1).max(64).optional(),
            }),
          },
        },
      },
    },
    responses: {
      202: json(deploymentSchema, 'Accepted'),
      403: json(errorSchema, 'The caller does not hold the token'),
      409: json(errorSchema, 'The token already has a live deployment, or the name is taken'),
      503: json(errorSchema, 'The chain or the token metadata could not be read'),
      ...errorResponses,
    },
  }),
}

export function nftRoutes(deps: NftRoutesDeps) {
  const router = createRouter()
  router.openapi(routes.list, async (c) => {
    const rows = await deps.deployments.listBound(principalOf(c))
    return c.json({ items: rows.map((row) => deploymentView(row, principalOf(c))) }, 200)
  })
  router.openapi(routes.deploy, async (c) => {
    const { chainId, contract, tokenId } = c.req.valid('param')
    // The body is optional: no body, or an empty one, is {}.
    const options = (c.req.header('content-type') ?? '').includes('json') ? c.req.valid('json') : {}
    const row = await deps.deployments.createForToken(
      principalOf(c),
      { chainId, contract, tokenId },
      options ?? {},
    )
    return c.json(deploymentView(row, principalOf(c)), 202)
  })
  return router
}
