import { z } from 'zod'
import { healthCheckSpec, nftStandards, portSpec, resourcesSpec } from '../domain/spec.ts'
import { address } from './payments-schema.ts'

// NFT-bound deployments: the collections berth follows (on configured networks) and how token
// metadata is fetched. A collection may carry a template, so that any holder of one of its tokens
// can deploy "their" agent with one call.

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max)
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')

const template = z.strictObject({
  image: z
    .string()
    .min(1)
    .max(512)
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9._\-/:]*(@sha256:[a-f0-9]{64})?$/, 'must be an image reference'),
  command: z.array(z.string().max(4096)).max(256).optional(),
  /** Values may use {{name}}, {{description}}, {{image}}, {{tokenId}}, {{attributes.<trait>}}, … */
  env: z.record(envName, z.string().max(32768)).optional(),
  resources: resourcesSpec.optional(),
  ports: z.array(portSpec).max(32).optional(),
  healthCheck: healthCheckSpec.optional(),
  secretEnv: z.array(envName).max(512).optional(),
})
export type CollectionTemplate = z.output<typeof template>

const collection = z.strictObject({
  chainId: int(1, 2 ** 31 - 1),
  contract: address,
  standard: z.enum(nftStandards),
  /** Keep the env values named in a spec's secretEnv when the token changes hands (default: drop them). */
  carrySecrets: z.boolean().default(false),
  /**
   * Hand the deployment's volumes to the new holder when the token changes hands (default: the new
   * holder starts with empty volumes, and the old ones are deleted as the provider's volume
   * retention says).
   */
  carryVolumes: z.boolean().default(false),
  template: template.optional(),
})
export type CollectionConfig = z.output<typeof collection>

export const nftCollectionsSchema = z
  .array(collection)
  .default([])
  .superRefine((collections, ctx) => {
    const keys = collections.map((c) => `${c.chainId}/${c.contract}`)
    keys.forEach((k, i) => {
      if (keys.indexOf(k) !== i)
        ctx.addIssue({ code: 'custom', message: `collection ${k} is listed twice`, path: [i] })
    })
  })

export const nftSchema = z
  .strictObject({
    /** ipfs:// metadata is fetched through this gateway (the CID path is appended). */
    ipfsGateway: z.url().default('https://ipfs.io/ipfs/'),
    metadataTimeoutMs: int(100, 60_000).default(5000),
    metadataMaxBytes: int(1024, 16 * 1024 * 1024).default(256 * 1024),
    /** An ownership verified this recently is not read again (a transfer clears it at once). */
    ownershipCacheSeconds: int(0, 3600).default(30),
    /** Backstop for missed logs: ownerOf re-read for every live bound deployment this often. */
    recheckIntervalSeconds: int(1, 86400).default(300),
    /** Backstop of the backstop: every bound deployment, stopped or not, checked this often. */
    sweepIntervalSeconds: int(1, 7 * 86400).default(3600),
  })
  .prefault({})
