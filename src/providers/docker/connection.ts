import Docker from 'dockerode'

// Which engine to talk to, from one config string (the config loader reads DOCKER_HOST, not this
// module: config/load.ts is the only reader of the environment, so what berth runs with is what
// its config says). Explicit options also keep dockerode from reading the environment itself.

export interface EngineAddress {
  /** `unix:///var/run/docker.sock` (default), `tcp://host:2375`, `https://host:2376` or `ssh://user@host`. */
  host?: string
  /** Request timeout; a hung engine must not hold a reconcile step forever. */
  timeoutMs?: number
}

export function dockerOptionsOf(address: EngineAddress = {}): Docker.DockerOptions {
  const raw = address.host ?? 'unix:///var/run/docker.sock'
  const timeout = address.timeoutMs ?? 30_000
  if (raw.startsWith('unix://')) return { socketPath: raw.slice('unix://'.length), host: undefined, timeout }
  if (raw.startsWith('/')) return { socketPath: raw, host: undefined, timeout }
  const url = new URL(raw)
  const protocol = url.protocol === 'ssh:' ? 'ssh' : url.protocol === 'https:' ? 'https' : 'http'
  const defaultPort = protocol === 'https' ? 2376 : protocol === 'ssh' ? 22 : 2375
  return {
    protocol,
    host: url.hostname,
    port: url.port ? Number(url.port) : defaultPort,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    timeout,
  }
}

export function connectDocker(address: EngineAddress = {}): Docker {
  return new Docker(dockerOptionsOf(address))
}
