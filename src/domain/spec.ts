import { z } from 'zod'

// DNS label (RFC 1123): lower-case letters, digits and '-', at most 63 characters, no leading or
// trailing '-'. Names end up in container names and hostnames, so the rule is strict.
export const dnsLabel = z
  .string()
  .min(1)
  .max(63)
  .regex(
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/,
    'must be a DNS label: a-z, 0-9 and "-", not starting or ending with "-"',
  )

// Image references: optional registry/path, name, optional tag and digest. No whitespace or shell
// characters can reach the provider.
export const imageRef = z
  .string()
  .min(1)
  .max(512)
  .regex(
    /^[a-zA-Z0-9][a-zA-Z0-9._\-/:]*(@sha256:[a-f0-9]{64})?$/,
    'must be an image reference such as "nginx:1.27" or "registry.example/app@sha256:…"',
  )

export const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
const labelKey = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9._\-/]*$/, 'must be a label key (letters, digits, ".", "_", "-", "/")')

export const portSpec = z.strictObject({
  containerPort: z.int().min(1).max(65535),
  protocol: z.enum(['tcp', 'udp']).default('tcp'),
})

export const resourcesSpec = z.strictObject({
  cpus: z.number().positive().max(64).default(0.5),
  memoryMb: z.int().min(16).max(262144).default(256),
  gpus: z.int().min(0).max(8).default(0),
  diskMb: z.int().min(0).max(1048576).default(1024),
})

const nodeLabelKey = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._/-]{0,62}$/, 'a node label key is lower-case letters, digits, . _ / -')

/** Where a replica may run, for providers that choose among nodes (the fleet, swarm). */
export const placementSpec = z.strictObject({
  /** Node labels a node must carry, each with this value (`region: eu-west`). */
  nodeLabels: z
    .record(
      nodeLabelKey,
      z.string().regex(/^[A-Za-z0-9._:/ -]{0,128}$/, 'a node label value is up to 128 plain characters'),
    )
    .refine((labels) => Object.keys(labels).length <= 16, 'at most 16 node labels')
    .optional(),
  /**
   * A node label whose values replicas are spread over evenly (`region`: as many replicas in each
   * region as can be). Swarm follows it; the fleet spreads replicas over nodes anyway.
   */
  spread: nodeLabelKey.optional(),
  /** The GPU model the replica's GPUs must be; any model when absent. */
  gpuModel: z
    .string()
    .regex(/^[A-Za-z0-9 ._/-]{1,128}$/, 'a GPU model is up to 128 plain characters')
    .optional(),
})

export const healthCheckSpec = z.strictObject({
  type: z.enum(['http', 'tcp']),
  port: z.int().min(1).max(65535),
  path: z.string().startsWith('/').max(1024).optional(),
  intervalSeconds: z.int().min(1).max(3600).default(10),
  timeoutSeconds: z.int().min(1).max(120).default(3),
  healthyThreshold: z.int().min(1).max(100).default(1),
  unhealthyThreshold: z.int().min(1).max(100).default(3),
})

export const volumeSpec = z.strictObject({
  name: dnsLabel,
  mountPath: z
    .string()
    .max(4096)
    .regex(/^\/[^:\0]*$/, 'must be an absolute path')
    .refine(
      (p) => p !== '/' && !p.split('/').includes('..'),
      'must be an absolute path other than /, without ".."',
    ),
  sizeMb: z.int().min(1).max(1048576).optional(),
})

/**
 * Capabilities a spec may add back (every container starts with all dropped), each with the
 * reason it needs it, which the operator can audit. Anything else stays dropped.
 */
export const addableCapabilities = ['NET_BIND_SERVICE', 'CHOWN', 'SETUID', 'SETGID', 'DAC_OVERRIDE'] as const

export const capAddSpec = z.strictObject({
  capability: z
    .string()
    .max(64)
    .refine((c) => (addableCapabilities as readonly string[]).includes(c), {
      error: (issue) =>
        `capability ${String(issue.input)} cannot be added; allowed: ${addableCapabilities.join(', ')}`,
    }),
  reason: z.string().trim().min(1, 'say why the workload needs this capability').max(500),
})

/** The largest uint256: token ids are decimal strings up to it, never JS numbers. */
const MAX_UINT256 = 2n ** 256n - 1n

export const TOKEN_ID_PATTERN = /^(0|[1-9][0-9]{0,77})$/
export const fitsUint256 = (v: string) => /^\d+$/.test(v) && BigInt(v) <= MAX_UINT256

export const tokenIdSchema = z
  .string()
  .regex(TOKEN_ID_PATTERN, 'must be a decimal token id without leading zeros')
  .refine(fitsUint256, 'must fit in uint256')

export const nftStandards = ['erc721', 'erc1155'] as const
export type NftStandard = (typeof nftStandards)[number]

/** The NFT a deployment is bound to: only the token's current holder may create, start or restart it. */
export const nftBindingSchema = z.strictObject({
  chainId: z
    .int()
    .min(1)
    .max(2 ** 31 - 1),
  contract: z
    .string()
    .regex(/^0x[0-9a-fA-F]{40}$/, 'must be a 0x-prefixed 20-byte hex address')
    .transform((a) => a.toLowerCase() as `0x${string}`),
  tokenId: tokenIdSchema,
  standard: z.enum(nftStandards),
})
export type NftBinding = z.output<typeof nftBindingSchema>

/** Names of a template's parameters, outputs and credentials. */
export const templateKey = z.string().regex(/^[a-z][a-zA-Z0-9_]{0,62}$/, 'must be a name such as "database"')

/**
 * What a deployment made from a template keeps of it (set by berth, never by a request): which
 * template and size, the parameters given, its outputs (patterns rendered against the endpoints),
 * and which env variable holds each generated credential.
 */
export const templateRefSpec = z.strictObject({
  id: dnsLabel,
  size: dnsLabel,
  params: z.record(templateKey, z.union([z.string().max(1024), z.number(), z.boolean()])),
  outputs: z.record(templateKey, z.string().max(2048)),
  credentials: z.record(templateKey, envName),
  /** How each rotatable credential is renewed: the command with `{{secrets.NAME}}`, and its form. */
  rotate: z
    .record(
      templateKey,
      z.strictObject({
        command: z.array(z.string().max(4096)).min(1).max(64),
        length: z.int().min(16).max(128),
        alphabet: z.enum(['alphanumeric', 'hex']),
      }),
    )
    .optional(),
})
export type TemplateRef = z.output<typeof templateRefSpec>

/** What one workload runs: the whole of a single-image spec, or one entry of `services`. */
const workloadFields = {
  image: imageRef,
  command: z.array(z.string().max(4096)).max(256).optional(),
  env: z.record(envName, z.string().max(32768)).optional(),
  ports: z.array(portSpec).max(32).optional(),
  resources: resourcesSpec.prefault({}),
  healthCheck: healthCheckSpec.optional(),
  volumes: z.array(volumeSpec).max(16).optional(),
  replicas: z.int().min(1).max(100).default(1),
  /** Names of env values that are secrets: kept sealed, never shown, dropped when an NFT changes hands. */
  secretEnv: z.array(envName).max(512).optional(),
  capAdd: z.array(capAddSpec).max(addableCapabilities.length).optional(),
}

/** One service of a multi-service deployment; `dependsOn` names services that must be healthy first. */
export const serviceSpec = z.strictObject({
  name: dnsLabel,
  ...workloadFields,
  dependsOn: z.array(dnsLabel).max(15).optional(),
})

/** The most services one deployment may have. */
export const MAX_SERVICES = 16

const deploymentFields = {
  name: dnsLabel,
  labels: z.record(labelKey, z.string().max(1024)).optional(),
  provider: z.string().min(1).max(64).optional(),
  placement: placementSpec.optional(),
  nft: nftBindingSchema.optional(),
  template: templateRefSpec.optional(),
}

const singleImageSchema = z.strictObject({ ...deploymentFields, ...workloadFields })
const multiServiceSchema = z.strictObject({
  ...deploymentFields,
  services: z.array(serviceSpec).min(1).max(MAX_SERVICES),
})

export type WorkloadSpec = z.output<z.ZodObject<typeof workloadFields>>
export type ServiceSpec = z.output<typeof serviceSpec>
export type SingleImageSpec = z.output<typeof singleImageSchema> & { services?: undefined }
export type MultiServiceSpec = z.output<typeof multiServiceSchema>
/** A deployment runs one image (its workload fields at the top) or several named services. */
export type DeploymentSpec = SingleImageSpec | MultiServiceSpec

const singleImageChecked = singleImageSchema.superRefine((spec, ctx) => checkWorkload(spec, ctx, []))
const multiServiceChecked = multiServiceSchema.superRefine(checkServices)

/** A single-image spec alone, for what only ever builds one (tests, benches, NFT templates). */
export const singleImageSpecSchema = singleImageChecked

/** The two shapes a spec may take, for the API's documentation. */
export const deploymentSpecShapes = [singleImageChecked, multiServiceChecked] as const

/**
 * A spec with `services` is multi-service; any other is single-image, as specs always were. Each
 * shape is checked by its own strict schema, so a problem is named at its field (a workload field
 * beside `services` is an unknown key), never as "matches neither".
 */
export const deploymentSpecSchema = z.unknown().transform((input, ctx): DeploymentSpec => {
  const multi = typeof input === 'object' && input !== null && 'services' in input
  const parsed = (multi ? multiServiceChecked : singleImageChecked).safeParse(input)
  if (parsed.success) return parsed.data as DeploymentSpec
  for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, input: undefined } as never)
  return z.NEVER
})

export type SingleImageSpecInput = z.input<typeof singleImageSchema>
export type DeploymentSpecInput = z.input<typeof singleImageSchema> | z.input<typeof multiServiceSchema>
export type HealthCheckSpec = z.output<typeof healthCheckSpec>

type Issues = z.core.$RefinementCtx

function checkCapabilities(
  spec: { capAdd?: Array<{ capability: string }> },
  ctx: Issues,
  at: Array<string | number>,
): void {
  const capabilities = new Set<string>()
  for (const [index, cap] of (spec.capAdd ?? []).entries()) {
    if (capabilities.has(cap.capability)) {
      ctx.addIssue({
        code: 'custom',
        path: [...at, 'capAdd', index, 'capability'],
        message: `capability ${cap.capability} is listed twice`,
      })
    }
    capabilities.add(cap.capability)
  }
}

/** One workload's own rules; `at` is its path in the spec (empty for a single-image spec). */
function checkWorkload(spec: WorkloadSpec, ctx: Issues, at: Array<string | number>): void {
  checkCapabilities(spec, ctx, at)
  const seen = new Set<string>()
  for (const [index, port] of (spec.ports ?? []).entries()) {
    const key = `${port.containerPort}/${port.protocol}`
    if (seen.has(key)) {
      ctx.addIssue({ code: 'custom', path: [...at, 'ports', index], message: `port ${key} is listed twice` })
    }
    seen.add(key)
  }
  const mountPaths = new Set<string>()
  for (const [index, volume] of (spec.volumes ?? []).entries()) {
    if (mountPaths.has(volume.mountPath)) {
      ctx.addIssue({
        code: 'custom',
        path: [...at, 'volumes', index, 'mountPath'],
        message: `${volume.mountPath} is mounted twice`,
      })
    }
    mountPaths.add(volume.mountPath)
  }
  // A check on a port the workload does not publish can never pass: say so now, not at run time.
  // (Without any ports, a provider that judges health itself may still check it.)
  const checked = spec.healthCheck
  if (
    checked &&
    spec.ports &&
    !spec.ports.some((p) => p.containerPort === checked.port && p.protocol === 'tcp')
  ) {
    ctx.addIssue({
      code: 'custom',
      path: [...at, 'healthCheck', 'port'],
      message: `port ${checked.port} is not one of the ${at.length > 0 ? "service's" : "deployment's"} tcp ports (${spec.ports.map((p) => `${p.containerPort}/${p.protocol}`).join(', ') || 'none'})`,
    })
  }
  const secretNames = spec.secretEnv ?? []
  for (const [index, name] of secretNames.entries()) {
    if (secretNames.indexOf(name) !== index) {
      ctx.addIssue({ code: 'custom', path: [...at, 'secretEnv', index], message: `${name} is listed twice` })
    }
  }
  if (spec.env && Object.keys(spec.env).length > 512) {
    ctx.addIssue({ code: 'custom', path: [...at, 'env'], message: 'at most 512 variables' })
  }
  const volumeNames = new Set<string>()
  for (const [index, volume] of (spec.volumes ?? []).entries()) {
    if (volumeNames.has(volume.name)) {
      ctx.addIssue({
        code: 'custom',
        path: [...at, 'volumes', index, 'name'],
        message: `volume ${volume.name} is listed twice`,
      })
    }
    volumeNames.add(volume.name)
  }
}

/**
 * Services: unique names, volume names unique across the deployment (a volume belongs to one
 * service), `dependsOn` naming other services of the deployment and never going round in a circle.
 */
function checkServices(spec: MultiServiceSpec, ctx: Issues): void {
  const names = new Set<string>()
  const volumeOwners = new Map<string, string>()
  for (const [index, service] of spec.services.entries()) {
    if (names.has(service.name)) {
      ctx.addIssue({
        code: 'custom',
        path: ['services', index, 'name'],
        message: `service ${service.name} is listed twice`,
      })
    }
    names.add(service.name)
    checkWorkload(service, ctx, ['services', index])
    for (const [v, volume] of (service.volumes ?? []).entries()) {
      const owner = volumeOwners.get(volume.name)
      if (owner !== undefined && owner !== service.name) {
        ctx.addIssue({
          code: 'custom',
          path: ['services', index, 'volumes', v, 'name'],
          message: `volume ${volume.name} already belongs to service ${owner}; a volume belongs to one service`,
        })
      }
      volumeOwners.set(volume.name, service.name)
    }
  }
  for (const [index, service] of spec.services.entries()) {
    for (const [d, dependency] of (service.dependsOn ?? []).entries()) {
      if (dependency === service.name || !names.has(dependency)) {
        ctx.addIssue({
          code: 'custom',
          path: ['services', index, 'dependsOn', d],
          message:
            dependency === service.name
              ? `service ${service.name} cannot depend on itself`
              : `no service named ${dependency} (services: ${[...names].join(', ')})`,
        })
      }
    }
  }
  const circle = dependencyCircleOf(spec.services)
  if (circle) {
    ctx.addIssue({
      code: 'custom',
      path: ['services'],
      message: `services depend on each other in a circle: ${circle.join(' → ')}`,
    })
  }
}

/** A circle in the services' dependsOn (its names, the first repeated at the end), or null. */
function dependencyCircleOf(services: ServiceSpec[]): string[] | null {
  const byName = new Map(services.map((s) => [s.name, s]))
  const done = new Set<string>()
  const visit = (name: string, path: string[]): string[] | null => {
    if (path.includes(name)) return [...path.slice(path.indexOf(name)), name]
    if (done.has(name)) return null
    for (const next of byName.get(name)?.dependsOn ?? []) {
      if (next === name || !byName.has(next)) continue
      const found = visit(next, [...path, name])
      if (found) return found
    }
    done.add(name)
    return null
  }
  for (const service of services) {
    const found = visit(service.name, [])
    if (found) return found
  }
  return null
}
