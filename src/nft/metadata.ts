import { z } from 'zod'
import { BerthError, describeIssues, invalidInput, summarizeIssues } from '../domain/errors.ts'
import type { OutboundClient } from '../outbound/guarded-client.ts'

// Token metadata (the JSON a tokenURI / uri points at), fetched from http(s), from ipfs:// through
// the configured gateway, or decoded from a data: URI; bounded in size and time, and checked
// before any of it reaches a deployment's environment. A token's URI is whatever its contract
// says, so it is fetched only through the guarded outbound client (no internal addresses).

export interface MetadataOptions {
  ipfsGateway: string
  /** The guarded outbound client, bounded in time and to `maxBytes`. */
  client: OutboundClient
  maxBytes: number
}

const attribute = z.object({
  trait_type: z.string().max(256).optional(),
  value: z.union([z.string().max(4096), z.number(), z.boolean()]),
})

export const metadataSchema = z.looseObject({
  name: z.string().max(1024).optional(),
  description: z.string().max(65536).optional(),
  image: z.string().max(8192).optional(),
  attributes: z.array(attribute).max(1000).optional(),
})
export type TokenMetadata = z.output<typeof metadataSchema>

const bad = (message: string) => invalidInput(`token metadata: ${message}`)

/** ERC-1155: `{id}` is the token id as 64 lower-case hex digits, no 0x. */
export function substituteId(uri: string, tokenId: string): string {
  return uri.replaceAll('{id}', BigInt(tokenId).toString(16).padStart(64, '0'))
}

/** The URL to fetch for a token URI, or the decoded body of a data: URI. */
export function resolveUri(uri: string, gateway: string): { url: string } | { body: string } {
  if (uri.startsWith('data:')) return { body: decodeDataUri(uri) }
  if (uri.startsWith('ipfs://')) return { url: gatewayUrl(uri, gateway) }
  if (/^https?:\/\//i.test(uri)) return { url: uri }
  throw bad(`unsupported URI scheme in ${uri.slice(0, 64)} (http, https, ipfs and data only)`)
}

/** A CID in the forms gateways take: CIDv0 (base58btc `Qm…`) or CIDv1 in base32, base58btc, base36 or base16. */
const CID =
  /^(Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{50,120}|z[1-9A-HJ-NP-Za-km-z]{40,100}|k[0-9a-z]{40,100}|f[0-9a-f]{40,160})$/
/** A path segment: URL-safe characters and percent escapes only. */
const SEGMENT = /^[A-Za-z0-9._~!$&'()*+,;=:@-]*(%[0-9A-Fa-f]{2}[A-Za-z0-9._~!$&'()*+,;=:@-]*)*$/

/** A segment that stays a segment: not `.` or `..` even once decoded (URL parsers resolve `%2e%2e`). */
function isPlainSegment(segment: string): boolean {
  if (!SEGMENT.test(segment)) return false
  let decoded: string
  try {
    decoded = decodeURIComponent(segment)
  } catch {
    return false
  }
  return decoded !== '.' && decoded !== '..' && !/[/\\]/.test(decoded)
}

/**
 * `ipfs://<cid>[/path]` as a path under the operator's gateway, from a validated CID and path only:
 * nothing of the URI can name another host, a query or a way out of the gateway's /ipfs/ tree.
 */
function gatewayUrl(uri: string, gateway: string): string {
  const [cid, ...segments] = uri
    .slice('ipfs://'.length)
    .replace(/^ipfs\//, '')
    .split('/')
  if (!cid || !CID.test(cid)) throw bad(`bad ipfs URI ${uri.slice(0, 128)}: not a CID`)
  if (!segments.every(isPlainSegment)) throw bad(`bad ipfs URI ${uri.slice(0, 128)}: bad path`)
  const base = gateway.endsWith('/') ? gateway : `${gateway}/`
  return `${base}${[cid, ...segments].join('/')}`
}

function decodeDataUri(uri: string): string {
  const comma = uri.indexOf(',')
  if (comma < 0) throw bad('malformed data: URI')
  const header = uri.slice('data:'.length, comma).toLowerCase()
  const payload = uri.slice(comma + 1)
  const type = header.split(';')[0]
  if (type && type !== 'application/json' && type !== 'text/plain')
    throw bad(`data: URI of type ${type}, expected application/json`)
  if (header.split(';').includes('base64')) return Buffer.from(payload, 'base64').toString('utf8')
  try {
    return decodeURIComponent(payload)
  } catch {
    throw bad('malformed percent-encoding in data: URI')
  }
}

async function fetchText(url: string, options: MetadataOptions): Promise<string> {
  const response = await options.client.fetch(url, { what: 'token metadata' })
  // The answer's status is not told: it would say what the host is and how it answers.
  if (response.status < 200 || response.status > 299) {
    throw new BerthError('provider_unavailable', 'token metadata could not be fetched')
  }
  return response.body.toString('utf8')
}

/** Fetches and validates the metadata at `uri`. */
export async function fetchMetadata(uri: string, options: MetadataOptions): Promise<TokenMetadata> {
  const target = resolveUri(uri, options.ipfsGateway)
  const text = 'body' in target ? target.body : await fetchText(target.url, options)
  if (Buffer.byteLength(text) > options.maxBytes) throw bad(`larger than ${options.maxBytes} bytes`)
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw bad('not valid JSON')
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw bad('not a JSON object')
  const result = metadataSchema.safeParse(parsed)
  if (!result.success) throw bad(summarizeIssues(describeIssues(result.error.issues)))
  return result.data
}

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.\- ]+?)\s*\}\}/g

/** Whether any value uses a placeholder that needs the token's metadata (not just its id). */
export function needsMetadata(values: Record<string, string>): boolean {
  return Object.values(values).some((v) =>
    [...v.matchAll(PLACEHOLDER)].some((m) => !['tokenId', 'chainId', 'contract', 'owner'].includes(m[1]!)),
  )
}

/**
 * Fills {{name}}, {{description}}, {{image}}, {{tokenId}}, {{chainId}}, {{contract}}, {{owner}} and
 * {{attributes.<trait_type>}}. A placeholder the token has no value for becomes the empty string:
 * metadata differs from token to token, and one missing trait must not make a token undeployable.
 */
export function fillPlaceholders(
  values: Record<string, string>,
  context: { tokenId: string; chainId: number; contract: string; owner: string; metadata?: TokenMetadata },
): Record<string, string> {
  const lookup = (key: string): string => {
    const m = context.metadata
    if (key === 'tokenId') return context.tokenId
    if (key === 'chainId') return String(context.chainId)
    if (key === 'contract') return context.contract
    if (key === 'owner') return context.owner
    if (key === 'name' || key === 'description' || key === 'image') return m?.[key] ?? ''
    if (key.startsWith('attributes.')) {
      const trait = key.slice('attributes.'.length)
      const found = m?.attributes?.find((a) => a.trait_type === trait)
      return found === undefined ? '' : String(found.value)
    }
    return ''
  }
  return Object.fromEntries(
    Object.entries(values).map(([k, v]) => [k, v.replace(PLACEHOLDER, (_all, key: string) => lookup(key))]),
  )
}
