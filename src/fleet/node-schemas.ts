import { isIP } from 'node:net'
import { z } from 'zod'
import { NODE_FAILURE_EVENTS } from '../domain/node.ts'

// What an agent sends: enrollment details and heartbeats. Every number is an integer with a bound,
// every list has a length limit and every string is plain ASCII of a bounded length, so a hostile
// agent can neither store arbitrary amounts of data nor send text the database refuses (a lone
// surrogate fails a whole batch's jsonb).

const count = (max: number) => z.number().int().min(0).max(max)

/** `region=eu-west`: a key of lower-case letters, digits, dots, dashes, slashes; a short value. */
export const labelsSchema = z
  .record(
    z.string().regex(/^[a-z0-9][a-z0-9._/-]{0,62}$/, 'a label key is lower-case letters, digits, . _ / -'),
    z.string().regex(/^[A-Za-z0-9._:/ -]{0,128}$/, 'a label value is up to 128 plain characters'),
  )
  .refine((labels) => Object.keys(labels).length <= 32, 'at most 32 labels')

export const nodeResourcesSchema = z.strictObject({
  milliCpus: count(100_000_000),
  memoryMb: count(1_000_000_000),
  diskMb: count(1_000_000_000_000),
  gpus: z
    .array(
      z.strictObject({
        model: z.string().regex(/^[A-Za-z0-9 ._/-]{1,128}$/, 'a GPU model is up to 128 plain characters'),
        count: z.number().int().min(1).max(1024),
      }),
    )
    .max(16),
})

const plainText = (max: number) =>
  z.string().regex(new RegExp(`^[\\x20-\\x7e]{0,${max}}$`), `up to ${max} plain characters`)

export const reportedInstanceSchema = z.strictObject({
  deploymentId: z.uuid(),
  replica: count(1000),
  generation: count(1_000_000_000),
  state: z.enum(['created', 'running', 'exited', 'stopped', 'failed']),
  exitCode: z.number().int().min(-1_000_000).max(1_000_000).optional(),
  oomKilled: z.boolean().optional(),
  startedAt: z.iso.datetime({ offset: true }).optional(),
  ports: z
    .array(
      z.strictObject({
        containerPort: z.number().int().min(1).max(65535),
        protocol: z.enum(['tcp', 'udp']),
        host: z.string().refine((host) => isIP(host) !== 0, 'an IP address'),
        port: z.number().int().min(1).max(65535),
      }),
    )
    .max(64)
    .optional(),
  error: z
    .strictObject({
      kind: z.enum(['permanent', 'transient']),
      message: plainText(500),
      eventType: z.enum(NODE_FAILURE_EVENTS).optional(),
    })
    .optional(),
})

export const heartbeatSchema = z.strictObject({
  nodeId: z.uuid(),
  /** Strictly increasing per node: a repeated or lower one is a replay or a reorder. */
  seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  /** The agent's clock; refused when further than fleet.clockSkewSeconds from the server's. */
  sentAt: z.iso.datetime({ offset: true }),
  capacity: nodeResourcesSchema,
  allocatable: nodeResourcesSchema,
  labels: labelsSchema,
  version: z.string().regex(/^[A-Za-z0-9.+_-]{1,64}$/, 'a version is up to 64 plain characters'),
  instances: z.array(reportedInstanceSchema).max(1000),
  usage: z
    .array(
      z.strictObject({
        deploymentId: z.uuid(),
        cpuPercent: z.number().min(0).max(100_000),
        memoryBytes: count(Number.MAX_SAFE_INTEGER),
        networkRxBytes: count(Number.MAX_SAFE_INTEGER),
        networkTxBytes: count(Number.MAX_SAFE_INTEGER),
      }),
    )
    .max(1000)
    .default([]),
})
export type Heartbeat = z.output<typeof heartbeatSchema>

export const nodeNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'a node name is letters, digits, . _ - (up to 63)')
