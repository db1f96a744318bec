import { createRoute, z } from '@hono/zod-openapi'
import type { Hex } from 'viem'
import { paymentNetworks } from '../../config/payments-schema.ts'
import type { Config } from '../../config/schema.ts'
import type { Deployments } from '../../deployments/deployments.ts'
import { forbidden } from '../../domain/errors.ts'
import type { Balances } from '../../payments/balances.ts'
import type { Orders } from '../../payments/orders.ts'
import { hourlyMicroUsd } from '../../payments/pricing.ts'
import { createRouter } from '../openapi.ts'
import { accountOf, principalOf, sourceOfRequest } from '../principal.ts'
import { errorResponses, errorSchema, hexAddress, idParam, json, jsonBody } from '../schemas.ts'

// Networks, quotes, orders, payments by hash, balance, ledger, and the operator's credits.
// Money crosses the API as decimal strings of integers (micro-USD, token base units).

export interface PaymentRoutesDeps {
  config: Pick<Config, 'networks' | 'payments' | 'pricing'>
  deployments: Pick<Deployments, 'get'>
  orders: Orders
  balances: Balances
}

const microUsd = z
  .union([z.string().regex(/^\d{1,18}$/, 'must be a whole number of micro-USD'), z.int().min(0)])
  .transform((v) => BigInt(v))
  .refine((v) => v > 0n && v <= 10n ** 15n, 'must be between 1 and 10^15 micro-USD')

const quoteBody = z.union([
  z.strictObject({
    deploymentId: z.uuid({ message: 'must be a UUID' }),
    hours: z
      .int()
      .min(1)
      .max(24 * 366),
    chainId: z.int().min(1),
    token: z.string().min(1).max(64),
  }),
  z.strictObject({
    creditsMicroUsd: microUsd,
    chainId: z.int().min(1),
    token: z.string().min(1).max(64),
  }),
])

const orderSchema = z
  .object({
    orderId: z.string(),
    status: z.enum(['init', 'processing', 'success', 'fail', 'expired']),
    chainId: z.number(),
    token: z.string(),
    amount: z.string(),
    received: z.string(),
    shortfall: z.string(),
    payTo: z.string(),
    rate: z.string(),
    sources: z.array(z.unknown()),
    valueMicroUsd: z.string(),
    creditedMicroUsd: z.string(),
    deploymentId: z.string().nullable(),
    hours: z.number().nullable(),
    expiresAt: z.string(),
    createdAt: z.string(),
    payments: z.array(z.unknown()),
  })
  .openapi('Order')

const balanceSchema = z.object({ availableMicroUsd: z.string(), heldMicroUsd: z.string() }).openapi('Balance')

const routes = {
  networks: createRoute({
    method: 'get',
    path: '/v1/networks',
    tags: ['payments'],
    summary: 'The networks and tokens berth accepts',
    responses: {
      200: json(z.object({ paymentsRequired: z.boolean(), items: z.array(z.unknown()) }), 'Networks'),
      ...errorResponses,
    },
  }),
  quote: createRoute({
    method: 'post',
    path: '/v1/quotes',
    tags: ['payments'],
    summary: 'Quote a payment: credits, or a deployment for some hours',
    request: { body: jsonBody(quoteBody) },
    responses: {
      201: json(orderSchema, 'The order to pay'),
      503: json(errorSchema, 'No safe price right now'),
      ...errorResponses,
    },
  }),
  order: createRoute({
    method: 'get',
    path: '/v1/orders/{id}',
    tags: ['payments'],
    request: { params: idParam },
    responses: { 200: json(orderSchema, 'The order and its payments'), ...errorResponses },
  }),
  pay: createRoute({
    method: 'post',
    path: '/v1/orders/{id}/payments',
    tags: ['payments'],
    summary: 'Submit the hash of a transaction that pays the order',
    request: {
      params: idParam,
      body: jsonBody(
        z.strictObject({ txHash: z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'must be a 32-byte 0x hex hash') }),
      ),
    },
    responses: { 200: json(orderSchema, 'The order after the payment was verified'), ...errorResponses },
  }),
  balance: createRoute({
    method: 'get',
    path: '/v1/balance',
    tags: ['payments'],
    responses: { 200: json(balanceSchema, 'Credits in micro-USD'), ...errorResponses },
  }),
  ledger: createRoute({
    method: 'get',
    path: '/v1/ledger',
    tags: ['payments'],
    request: {
      query: z.object({
        limit: z.coerce.number().int().min(1).max(500).default(100),
        offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
      }),
    },
    responses: {
      200: json(z.object({ items: z.array(z.unknown()) }), 'Ledger entries, newest first'),
      ...errorResponses,
    },
  }),
  billing: createRoute({
    method: 'get',
    path: '/v1/deployments/{id}/billing',
    tags: ['payments'],
    summary: "A deployment's price, hold, prepaid period and billing progress",
    request: { params: idParam },
    responses: {
      200: json(
        z.object({
          deploymentId: z.string(),
          hourlyMicroUsd: z.string(),
          heldMicroUsd: z.string(),
          paidUntil: z.string().nullable(),
          billedThrough: z.string().nullable(),
          fundsExhaustedAt: z.string().nullable(),
        }),
        'Billing',
      ),
      ...errorResponses,
    },
  }),
  credit: createRoute({
    method: 'post',
    path: '/v1/admin/accounts/{address}/credits',
    tags: ['admin'],
    summary: 'Grant credits to a wallet (operator token only)',
    request: {
      params: z.object({
        address: hexAddress.openapi({ param: { name: 'address', in: 'path' } }),
      }),
      body: jsonBody(
        z.strictObject({
          amountMicroUsd: microUsd,
          reason: z.string().min(1).max(500),
          kind: z.enum(['grant', 'refund']).default('grant'),
        }),
      ),
    },
    responses: {
      200: json(balanceSchema.extend({ address: z.string() }), 'The new balance'),
      ...errorResponses,
    },
  }),
}

export function paymentRoutes(deps: PaymentRoutesDeps) {
  const router = createRouter()
  router.openapi(routes.networks, (c) =>
    c.json({
      paymentsRequired: deps.config.payments.required,
      items: paymentNetworks(deps.config.networks).map((n) => ({
        chainId: n.chainId,
        name: n.name,
        confirmations: n.confirmations,
        treasury: n.treasury,
        tokens: n.tokens.map((t) => ({ symbol: t.symbol, address: t.address, decimals: t.decimals })),
      })),
    }),
  )
  router.openapi(routes.quote, async (c) => {
    const input = c.req.valid('json')
    return c.json(await deps.orders.quote(accountOf(c).id, input, sourceOfRequest(c)), 201)
  })
  router.openapi(routes.order, async (c) =>
    c.json(await deps.orders.get(accountOf(c).id, c.req.valid('param').id), 200),
  )
  router.openapi(routes.pay, async (c) => {
    const { id } = c.req.valid('param')
    const { txHash } = c.req.valid('json')
    const source = sourceOfRequest(c)
    return c.json(
      await deps.orders.submitPayment(accountOf(c).id, id, txHash.toLowerCase() as Hex, source),
      200,
    )
  })
  router.openapi(routes.balance, async (c) => c.json(await deps.balances.balance(accountOf(c).id), 200))
  router.openapi(routes.ledger, async (c) =>
    c.json(await deps.balances.ledger(accountOf(c).id, c.req.valid('query')), 200),
  )
  router.openapi(routes.billing, async (c) => {
    const row = await deps.deployments.get(principalOf(c), c.req.valid('param').id)
    return c.json(
      await deps.balances.deploymentBilling(row.id, hourlyMicroUsd(row.spec, deps.config.pricing)),
      200,
    )
  })
  router.openapi(routes.credit, async (c) => {
    if (principalOf(c).kind !== 'admin') throw forbidden('granting credits needs the operator admin token')
    const { amountMicroUsd, reason, kind } = c.req.valid('json')
    const { address } = c.req.valid('param')
    const source = sourceOfRequest(c)
    return c.json(await deps.balances.credit(address, amountMicroUsd, reason, kind, source), 200)
  })
  return router
}
