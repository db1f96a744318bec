// Credentials for private registries: which one an image is pulled from, which of the operator's
// credentials serve it, and the engine's `authconfig`. Docker's own rule decides the registry: the
// first path component is a registry host when it has a dot or a port, is `localhost`, or has an
// upper-case letter (a repository path cannot); otherwise the image is on Docker Hub.

/** Who may run images the credentials serve: the operator's NFT templates, some wallets, or all. */
export type AllowedFor = 'templates' | 'all' | readonly string[]

export interface RegistryAuth {
  registry: string
  username: string
  password: string
  /**
   * The repositories the credentials serve: `acme/agent` exactly, or `acme/*` for everything
   * under `acme/`. Absent: every repository of the registry.
   */
  repositories?: readonly string[]
  /** Absent: `templates`. */
  allowedFor?: AllowedFor
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
  if (registryComponent(first)) return normalizeRegistry(first)
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

/**
 * The repository path of an image, without registry, tag or digest, as Docker Hub names it
 * (`nginx` → `library/nginx`).
 */
export function repositoryOf(image: string): string {
  const name = image.split('@')[0]!.toLowerCase()
  const slash = name.indexOf('/')
  let path = slash >= 0 && registryComponent(name.slice(0, slash)) ? name.slice(slash + 1) : name
  const tag = path.indexOf(':', path.lastIndexOf('/') + 1)
  if (tag >= 0) path = path.slice(0, tag)
  return registryOf(image) === DOCKER_HUB && !path.includes('/') ? `library/${path}` : path
}

const registryComponent = (first: string) =>
  first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()

function servesRepository(auth: RegistryAuth, repository: string): boolean {
  if (!auth.repositories) return true
  return auth.repositories.some((pattern) => {
    const p = pattern.toLowerCase()
    return p.endsWith('/*') ? repository.startsWith(p.slice(0, -1)) : repository === p
  })
}

/** The configured credentials that serve `image`: its registry and one of their repositories. */
export function authsServing(image: string, auths: readonly RegistryAuth[]): RegistryAuth[] {
  const registry = registryOf(image)
  const repository = repositoryOf(image)
  return auths.filter((a) => normalizeRegistry(a.registry) === registry && servesRepository(a, repository))
}

/** The credentials for pulling `image`, if any are configured for its registry and repository. */
export function authFor(image: string, auths: readonly RegistryAuth[]): AuthConfig | undefined {
  const registry = registryOf(image)
  const match = authsServing(image, auths)[0]
  if (!match) return undefined
  return {
    username: match.username,
    password: match.password,
    serveraddress: registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry,
  }
}
