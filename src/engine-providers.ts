import { join, resolve } from 'node:path'
import type Docker from 'dockerode'
import type { Logger } from 'pino'
import { readSecretFile } from './config/load.ts'
import type { Config } from './config/schema.ts'
import { createPortAllocator } from './control/ports/port-allocator.ts'
import type { Database } from './db/client.ts'
import { invalidInput } from './domain/errors.ts'
import { connectDocker } from './providers/docker/connection.ts'
import { createDockerProvider } from './providers/docker/docker-provider.ts'
import type { RegistryAuth } from './providers/docker/registry-auth.ts'
import { canLoopMount } from './providers/docker/sized-volumes.ts'
import type { Provider } from './providers/provider.ts'
import { createSwarmProvider } from './providers/swarm/swarm-provider.ts'

// The providers that talk to a Docker engine API, built from config with host ports from the
// database: `docker` (one engine) and `swarm` (a swarm's manager). Both are `auto` by default:
// offered only when their engine answers (as a manager, for swarm) within a short time at start,
// so a host without Docker starts as quickly as before.

/**
 * The docker provider, with host ports from the database, or null when it is off. `auto` offers
 * it only when the engine answers a ping within a short time at start, so a host without Docker
 * starts as quickly as before.
 */
export async function dockerProviderOf(
  config: Config,
  database: Database,
  logger: Logger,
): Promise<Provider | null> {
  const {
    enabled,
    host,
    portRangeStart,
    portRangeEnd,
    registryAuths: _auths,
    volumeSizes,
    volumesDir,
    ...options
  } = config.providers.docker
  if (enabled === false) return null
  const sizedVolumesDir = sizedVolumesDirOf(config, host, logger)
  const ports = createPortAllocator(database, {
    rangeStart: portRangeStart,
    rangeEnd: portRangeEnd,
    hostIp: options.hostIp,
  })
  const provider = createDockerProvider({
    ...options,
    registryAuths: registryAuthsOf(config),
    engine: host ? { host } : {},
    allocatePort: ports.allocate,
    blockPort: ports.block,
    releasePorts: ports.release,
    ...(sizedVolumesDir ? { sizedVolumesDir } : {}),
  })
  if (enabled === 'auto') {
    // Its own client with a short request timeout, so a silent remote engine holds nothing open.
    const answers = await connectDocker({ ...(host ? { host } : {}), timeoutMs: 2000 })
      .ping()
      .then(
        () => true,
        () => false,
      )
    logger.info({ engine: host ?? 'unix:///var/run/docker.sock', answers }, 'docker engine probed')
    if (!answers) return null
  }
  return provider
}

/** The operator's registry credentials (shared by every engine provider), password files read. */
function registryAuthsOf(config: Config): RegistryAuth[] {
  return config.providers.docker.registryAuths.map(({ password, passwordFile, ...auth }) => ({
    ...auth,
    password: password ?? readSecretFile('providers.docker.registryAuths[].passwordFile', passwordFile!),
  }))
}

/**
 * The swarm provider, or null when it is off. `auto` offers it when the engine at
 * `providers.swarm.host` answers as a swarm manager. Registry credentials and the allowed and
 * denied registries are the operator's, shared with the docker provider.
 */
export async function swarmProviderOf(
  config: Config,
  database: Database,
  logger: Logger,
): Promise<Provider | null> {
  const { enabled, host, portRangeStart, portRangeEnd, ...options } = config.providers.swarm
  if (enabled === false) return null
  // One client with a short request timeout for what is asked at start, so a silent remote
  // engine holds nothing open.
  const probe = connectDocker({ ...(host ? { host } : {}), timeoutMs: 2000 })
  if (enabled === 'auto') {
    const manager = await probe.swarmInspect().then(
      () => true,
      () => false,
    )
    logger.info({ engine: host ?? 'unix:///var/run/docker.sock', manager }, 'swarm manager probed')
    if (!manager) return null
  }
  await warnOfOldManager(probe, logger)
  const ports = createPortAllocator(database, {
    rangeStart: portRangeStart,
    rangeEnd: portRangeEnd,
    // Swarm publishes on every address of the node; the allocator only keeps ports unique.
    hostIp: '0.0.0.0',
  })
  return createSwarmProvider({
    ...options,
    engine: host ? { host } : {},
    allocatePort: ports.allocate,
    blockPort: ports.block,
    releasePorts: ports.release,
    registryAuths: registryAuthsOf(config),
    allowedRegistries: config.providers.docker.allowedRegistries,
    deniedRegistries: config.providers.docker.deniedRegistries,
  })
}

/**
 * Managers before engine API 1.46 drop a service's no-new-privileges: tasks then run without it
 * unless every node's daemon sets it. Said once at start, where the operator reads it.
 */
async function warnOfOldManager(probe: Docker, logger: Logger): Promise<void> {
  const version = await probe.version().then(
    (v) => v.ApiVersion,
    () => undefined,
  )
  const [major = 0, minor = 0] = (version ?? '').split('.').map(Number)
  if (version && (major < 1 || (major === 1 && minor < 46))) {
    logger.warn(
      { apiVersion: version },
      'this swarm manager ignores no-new-privileges for services (API before 1.46): set "no-new-privileges": true in every node\'s daemon.json',
    )
  }
}

/**
 * Where the docker provider keeps sized volumes' filesystems, or undefined when sizes are only
 * recorded. Enforcing needs berth as root on the engine's own host (a local socket) with the
 * tools; `enforce` without them is a configuration error, `auto` falls back to recording.
 */
function sizedVolumesDirOf(config: Config, host: string | undefined, logger: Logger): string | undefined {
  const { volumeSizes, volumesDir } = config.providers.docker
  if (volumeSizes === 'record') return undefined
  const local = !host || host.startsWith('unix://')
  const why = !local
    ? 'the engine is on another host'
    : !canLoopMount()
      ? 'berth does not run as root with mount and mkfs.ext4'
      : config.dataDir.startsWith('memory://') && !volumesDir
        ? 'the data dir is in memory (set providers.docker.volumesDir)'
        : undefined
  if (why && volumeSizes === 'enforce') {
    throw invalidInput(
      `invalid configuration: providers.docker.volumeSizes: enforce is not possible here: ${why}`,
    )
  }
  if (why) {
    logger.warn(`volume sizes are recorded, not enforced: ${why}`)
    return undefined
  }
  return resolve(volumesDir ?? join(config.dataDir, 'volumes'))
}
