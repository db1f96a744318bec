import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { forbidden } from '../../domain/errors.ts'
import { isInternalAddress, plainAddress } from '../../outbound/address-policy.ts'
import type { ImageRequester } from '../provider.ts'
import { authsServing, normalizeRegistry, type RegistryAuth, registryOf } from './registry-auth.ts'

// Which images a tenant may run on this engine. Decided by the image's name before anything is
// pulled, so an image already in the engine's cache (pulled for someone else, with the operator's
// credentials) is refused to a tenant just as a pull for it would be; names that the engine would
// read as an image id are refused, since an id finds a cached image whatever its name:
//
// - a registry in `deniedRegistries` is refused; with `allowedRegistries` set, only those are used;
// - a registry host on a loopback, private, link-local (or otherwise not public) address is refused
//   unless it is in `allowedRegistries`: the engine would otherwise pull from inside the operator's
//   network on a tenant's behalf;
// - an image the operator's registry credentials serve runs only for whom they are allowed:
//   `all`, the listed wallet addresses, or `templates` (the operator's own NFT collection templates).

export interface ImagePolicySettings {
  allowedRegistries: readonly string[]
  deniedRegistries: readonly string[]
  registryAuths: readonly RegistryAuth[]
  /** Name resolution for registry hosts; tests inject one, so no test asks a real DNS server. */
  resolve?: (host: string) => Promise<string[]>
}

const DOCKER_HUB = 'docker.io'
/** A bare image id, or a prefix of one, with or without its `sha256:`. */
const IMAGE_ID = /^(sha256:)?[a-f0-9]+$/i
/** How long a registry host's addresses are trusted before they are looked up again. */
const RESOLVED_TTL_MS = 60_000

const systemResolve = async (host: string) =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => a.address)

export function createImagePolicy(settings: ImagePolicySettings) {
  const allowed = new Set(settings.allowedRegistries.map(normalizeRegistry))
  const denied = new Set(settings.deniedRegistries.map(normalizeRegistry))
  const resolve = settings.resolve ?? systemResolve
  const internalUntil = new Map<string, { internal: boolean; until: number }>()

  async function isInternalHost(registry: string): Promise<boolean> {
    const host = plainAddress(registry.replace(/:\d+$/, ''))
    if (host === 'localhost' || host.endsWith('.localhost')) return true
    if (isIP(host)) return isInternalAddress(host)
    const cached = internalUntil.get(host)
    if (cached && cached.until > Date.now()) return cached.internal
    let internal: boolean
    try {
      const addresses = await resolve(host)
      internal = addresses.length === 0 || addresses.some(isInternalAddress)
    } catch {
      // A name that does not resolve cannot be pulled from either; the pull will say so.
      internal = false
    }
    internalUntil.set(host, { internal, until: Date.now() + RESOLVED_TTL_MS })
    return internal
  }

  function mayUse(auth: RegistryAuth, requester: ImageRequester): boolean {
    const allowedFor = auth.allowedFor ?? 'templates'
    if (allowedFor === 'all') return true
    if (allowedFor === 'templates') return requester.fromTemplate
    return (
      requester.ownerAddress !== null && allowedFor.some((a) => a.toLowerCase() === requester.ownerAddress)
    )
  }

  return {
    /** Resolves when `requester` may run `image` here; rejects with 403 naming the registry. */
    async check(image: string, requester: ImageRequester): Promise<void> {
      // The engine looks a bare hex name up as an image id (or a prefix of one) too: that would run
      // whatever image it has, whoever pulled it. Images are named, never addressed by id.
      if (IMAGE_ID.test(image)) {
        throw forbidden(`${image} looks like an image id; name the image (repository and tag or digest)`)
      }
      const registry = registryOf(image)
      if (denied.has(registry)) throw forbidden(`images from ${registry} are not allowed on this server`)
      if (allowed.size > 0 && !allowed.has(registry)) {
        throw forbidden(
          `images from ${registry} are not allowed on this server; allowed registries: ${[...allowed].join(', ')}`,
        )
      }
      if (registry !== DOCKER_HUB && !allowed.has(registry) && (await isInternalHost(registry))) {
        throw forbidden(`registry ${registry} is on a private address, which this server does not pull from`)
      }
      const serving = authsServing(image, settings.registryAuths)
      if (serving.length > 0 && !serving.some((auth) => mayUse(auth, requester))) {
        throw forbidden(`${image} is in a private repository of ${registry} that this account may not use`)
      }
    },
  }
}
