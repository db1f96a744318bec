import { z } from '@hono/zod-openapi'
import { type OwnerEventType, ownerEventTypes } from '../domain/event-types.ts'

// The events berth tells, as the API document describes them: one envelope, and for each type
// the facts its `data` carries. Amounts are decimal strings of integers (micro-USD, token base
// units), as everywhere in berth.

const id = z.string()
const micro = z
  .string()
  .regex(/^-?\d+$/)
  .describe('micro-USD, a decimal integer')
const deployment = {
  deploymentId: id,
  name: z.string(),
}
const status = z.object({
  ...deployment,
  status: z.string(),
  previousStatus: z.string(),
  error: z.string().nullable(),
  stopReason: z.string().nullable(),
})

const payloads: Record<OwnerEventType, z.ZodType> = {
  'deployment.running': status,
  'deployment.failed': status,
  'deployment.stopped': status,
  'deployment.unhealthy': status,
  'deployment.deleted': status,
  'deployment.stopped_out_of_funds': z.object(deployment),
  'payment.credited': z.object({
    microUsd: micro,
    source: z.enum(['chain', 'operator_grant', 'operator_refund']),
    paymentId: id.optional(),
    orderId: id.nullable().optional(),
    chainId: z.number().int().optional(),
    txHash: z.string().optional(),
    token: z.string().optional(),
    amount: z.string().optional().describe('token base units'),
    reason: z.string().optional(),
  }),
  'payment.reversed': z.object({
    microUsd: micro,
    paymentId: id,
    chainId: z.number().int(),
    txHash: z.string(),
    token: z.string(),
    amount: z.string(),
  }),
  'balance.low': z.object({
    availableMicroUsd: micro,
    heldMicroUsd: micro,
    thresholdMicroUsd: micro,
    deploymentId: id,
  }),
  'funds.exhausted': z.object({
    deploymentId: id,
    intervalCostMicroUsd: micro,
    graceEndsAt: z.iso.datetime(),
  }),
  'nft.transferred': z.object({
    ...deployment,
    chainId: z.number().int(),
    contract: z.string(),
    tokenId: z.string(),
    from: z.string(),
    to: z.string().nullable(),
    burned: z.boolean(),
    stopped: z.boolean(),
    direction: z.enum(['in', 'out']).describe('in: the deployment came to this owner; out: it left'),
    message: z.string(),
  }),
  'node.lost': z.object({ nodeId: id, name: z.string(), lastSeenAt: z.iso.datetime() }),
  'node.recovered': z.object({ nodeId: id }),
  'quota.reached': z.object({
    quota: z.string(),
    limit: z.number(),
    used: z.number(),
    requested: z.number(),
  }),
  'webhook.disabled': z.object({
    targetId: id,
    kind: z.string(),
    shown: z.string(),
    reason: z
      .enum(['gone', 'failing'])
      .describe('gone: it answered 410; failing: the whole retry schedule failed'),
  }),
  'webhook.test': z.object({ targetId: id, message: z.string() }),
}

export const eventTypeSchema = z.enum(ownerEventTypes)

export const eventEnvelopeSchema = z
  .union(
    ownerEventTypes.map((type) =>
      z
        .object({
          id: z.string().describe('evt_…: also the webhook-id of every delivery of it'),
          type: z.literal(type),
          timestamp: z.iso.datetime(),
          deploymentId: z.string().nullable(),
          data: payloads[type],
        })
        .openapi(`Event_${type.replace('.', '_')}`),
    ) as unknown as [z.ZodType, z.ZodType, ...z.ZodType[]],
  )
  .openapi('Event', { description: 'An event berth told: the body of a webhook, an item of GET /v1/events' })
