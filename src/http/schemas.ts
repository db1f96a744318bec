import { z } from '@hono/zod-openapi'
import { statuses, waitReasons } from '../domain/lifecycle.ts'

// Response and parameter schemas shared by routes (request bodies live with their route).

/** A wallet (or contract) address as it may be written: 0x and 40 hex digits, in any case. */
export const hexAddress = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'must be a 0x-prefixed 20-byte hex address')

export const idParam = z.object({
  id: z.uuid({ message: 'must be a UUID' }).openapi({ param: { name: 'id', in: 'path' } }),
})

export const errorSchema = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.unknown().optional(),
      requestId: z.string(),
    }),
  })
  .openapi('Error')

export const deploymentSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    owner: z.string(),
    status: z.enum(statuses),
    desiredState: z.string(),
    provider: z.string(),
    spec: z.record(z.string(), z.unknown()),
    progress: z.object({
      stage: z.string(),
      percent: z.number(),
      /** For a deployment made from a template: initialising, allocating, configuring, provisioning, verifying, complete. */
      resource: z.object({ stage: z.string(), percent: z.number() }).optional(),
    }),
    endpoints: z.array(
      z.object({
        containerPort: z.number(),
        protocol: z.string(),
        url: z.string(),
        /** The service it belongs to, on a multi-service deployment. */
        service: z.string().optional(),
      }),
    ),
    /** A template deployment's connection details (never a secret), once its ports answer. */
    connection: z.record(z.string(), z.string()).optional(),
    stopReason: z.string().optional(),
    error: z.string().optional(),
    /** Why a start waits in `pending`, and its place in the provider's queue (1: next). */
    waiting: z.object({ reason: z.enum(waitReasons), place: z.number().optional() }).optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Deployment')

export const eventSchema = z
  .object({
    seq: z.number(),
    type: z.string(),
    status: z.string().optional(),
    stage: z.string().optional(),
    percent: z.number().optional(),
    message: z.string().optional(),
    data: z.unknown().optional(),
    actor: z.string().optional().openapi({
      description:
        'Who caused it: account:0x…, key:<id>, operator:admin, system:<part of berth>, chain:<tx hash>',
    }),
    at: z.string(),
  })
  .openapi('DeploymentEvent')

/** A required JSON request body of a route's OpenAPI description. */
export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { 'application/json': { schema } },
})

/** A JSON response of a route's OpenAPI description. */
export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
})

/** The error answers every authenticated route can give, in the one error envelope. */
export const errorResponses = {
  400: json(errorSchema, 'Invalid input: `{"error":{"code":"invalid_input",…}}` naming the fields'),
  401: json(errorSchema, 'Missing, invalid, expired or revoked credentials'),
  404: json(errorSchema, "Not found (another owner's resources answer the same)"),
} as const
