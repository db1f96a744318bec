import { z } from 'zod'
import {
  capAddSpec,
  dnsLabel,
  envName,
  healthCheckSpec,
  imageRef,
  portSpec,
  templateKey,
  volumeSpec,
} from '../domain/spec.ts'

// What a template file (YAML, in templates/ or a directory the operator adds) may say. Templates
// are the operator's, so they are trusted to name images and commands; what a user gives them
// (parameters) is checked against each parameter's type and pattern before it reaches a spec.
//
// In env values, commands and outputs, `{{params.NAME}}` is a parameter, `{{secrets.NAME}}` a
// generated secret (env values only), `{{deployment.name}}` the deployment's name (env values and
// commands: services reach each other unambiguously as `SERVICE.DEPLOYMENT`), and in outputs `{{host:PORT}}` / `{{port:PORT}}` are where
// the container port PORT answers (`{{host:SERVICE.PORT}}` for one service's port, in a
// multi-service template; the first replica's).

const paramDef = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('string'),
    description: z.string().max(500).optional(),
    /** A regular expression the whole value must match: keep it tight, values go into env and commands. */
    pattern: z.string().max(500),
    default: z.string().max(1024).optional(),
  }),
  z.strictObject({
    type: z.literal('integer'),
    description: z.string().max(500).optional(),
    minimum: z.int(),
    maximum: z.int(),
    default: z.int().optional(),
  }),
  z.strictObject({
    type: z.literal('boolean'),
    description: z.string().max(500).optional(),
    default: z.boolean().optional(),
  }),
])
export type ParamDef = z.output<typeof paramDef>

const sizeDef = z.strictObject({
  description: z.string().max(200).optional(),
  cpus: z.number().positive().max(64),
  memoryMb: z.int().min(16).max(262144),
  /** Each volume marked `storage: true` gets this size, and the deployment's disk is its sum. */
  storageMb: z.int().min(1).max(1048576).optional(),
})
export type SizeDef = z.output<typeof sizeDef>

const secretDef = z.strictObject({
  description: z.string().max(200).optional(),
  length: z.int().min(16).max(128).default(32),
  /** alphanumeric (a-z, A-Z, 0-9) or hex: both safe in URLs, shells and connection strings. */
  alphabet: z.enum(['alphanumeric', 'hex']).default('alphanumeric'),
  /**
   * The command (an argument vector, run in each running replica) that makes the service take a
   * new value, given as `{{secrets.NAME}}`; without it the secret cannot be rotated.
   */
  rotate: z.array(z.string().max(4096)).min(1).max(64).optional(),
})
export type SecretDef = z.output<typeof secretDef>

const serviceDef = z.strictObject({
  image: imageRef,
  command: z.array(z.string().max(4096)).max(256).optional(),
  env: z.record(envName, z.string().max(32768)).optional(),
  ports: z.array(portSpec).max(32).optional(),
  healthCheck: healthCheckSpec.optional(),
  volumes: z
    .array(volumeSpec.omit({ sizeMb: true }).extend({ storage: z.boolean().default(false) }))
    .max(16)
    .optional(),
  capAdd: z.array(capAddSpec).max(5).optional(),
})
export type ServiceDef = z.output<typeof serviceDef>

/** One service of a multi-service template. The size's CPUs, memory and storage are each service's. */
const namedServiceDef = serviceDef.extend({
  name: dnsLabel,
  replicas: z.int().min(1).max(16).default(1),
  dependsOn: z.array(dnsLabel).max(15).optional(),
})
export type NamedServiceDef = z.output<typeof namedServiceDef>

export const templateFileSchema = z
  .strictObject({
    id: dnsLabel,
    name: z.string().min(1).max(100),
    description: z.string().max(1000),
    params: z.record(templateKey, paramDef).default({}),
    sizes: z.record(dnsLabel, sizeDef).refine((sizes) => Object.keys(sizes).length > 0, 'at least one size'),
    /** Generated from a secure random source at create; each is put in the env variables naming it. */
    secrets: z.record(templateKey, secretDef).default({}),
    /** What it runs: one `service`, or several `services` (a multi-service deployment). */
    service: serviceDef.optional(),
    services: z.array(namedServiceDef).min(1).max(16).optional(),
    /** Connection details shown with the deployment (never a secret). */
    outputs: z.record(templateKey, z.string().max(2048)).default({}),
  })
  .refine((t) => (t.service === undefined) !== (t.services === undefined), {
    message: 'give either service or services',
    path: ['service'],
  })
export type TemplateFile = z.output<typeof templateFileSchema>

/** A template's services: its one service (named null), or each of its services. */
export function templateServicesOf(
  t: Pick<TemplateFile, 'service' | 'services'>,
): Array<ServiceDef & { name: string | null; replicas: number; dependsOn?: string[] }> {
  return t.service ? [{ ...t.service, name: null, replicas: 1 }] : (t.services ?? [])
}

const PLACEHOLDER = /\{\{\s*([a-z]+)(?:\.|:)([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*\}\}/g

/** The placeholders a text uses, as `kind.name` (`params.user`, `secrets.password`, `port.5432`). */
export function placeholdersOf(text: string): Array<{ kind: string; name: string }> {
  return [...text.matchAll(PLACEHOLDER)].map((m) => ({ kind: m[1]!, name: m[2]! }))
}

/** Replaces each placeholder with what `value` gives for it. */
export function fillPlaceholders(text: string, value: (kind: string, name: string) => string): string {
  return text.replace(PLACEHOLDER, (_, kind: string, name: string) => value(kind, name))
}
