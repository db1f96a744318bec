// Credentials for private registries: which one an image is pulled from, and the engine's
// `authconfig` for it. Docker's own rule decides the registry: the first path component is a
// registry host when it has a dot or a port, or is `localhost`; otherwise the image is on Docker Hub.

export interface RegistryAuth {
  registry: string
  username: string
  password: string
}

export interface AuthConfig {
  username: string
  password: string
  serveraddress: string
}

const DOCKER_HUB = 'docker.io'
const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io'])

/** The registry host an image reference is pulled from, lower-case (`docker.io` for Docker Hub). */
export function registryOf(image: string): string {
  const slash = image.indexOf('/')
  if (slash < 0) return DOCKER_HUB
  const first = image.slice(0, slash)
  if (first.includes('.') || first.includes(':') || first === 'localhost') return normalizeRegistry(first)
  return DOCKER_HUB
}

/** `https://index.docker.io/v1/` → `docker.io`; `Registry.Example:5000` → `registry.example:5000`. */
export function normalizeRegistry(registry: string): string {
  const host = registry
    .trim()
    .toLowerCase()
    .replace(/^[a-z]+:\/\//, '')
    .replace(/\/.*$/, '')
  return HUB_ALIASES.has(host) ? DOCKER_HUB : host
}

/** The credentials for the registry `image` comes from, if any are configured. */
export function authFor(image: string, auths: readonly RegistryAuth[]): AuthConfig | undefined {
  const registry = registryOf(image)
  const match = auths.find((a) => normalizeRegistry(a.registry) === registry)
  if (!match) return undefined
  return {
    username: match.username,
    password: match.password,
    serveraddress: registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry,
  }
}
