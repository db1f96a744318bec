import { createServer } from 'node:net'

// Host ports for published container ports. Composed with a database, the control plane
// allocates them from a configured range (control/ports/port-allocator.ts: unique even across
// concurrent deployments and control planes) and frees them on delete. Without one (the provider on its
// own, as in its tests) the OS picks a free port. Either answer can go stale before the engine
// binds it: the provider then blocks that port, removes the container and reports a transient
// error, so the next apply gets another port.

export interface PortRequest {
  deploymentId: string
  replica: number
  containerPort: number
  protocol: 'tcp' | 'udp'
}

export type AllocatePort = (request: PortRequest) => Promise<number>

/** Keeps a host port the engine could not bind from being handed out again for a while. */
export type BlockPort = (hostPort: number, protocol: 'tcp' | 'udp') => Promise<void>

export function osFreePort(hostIp: string): AllocatePort {
  return () =>
    new Promise((resolve, reject) => {
      const server = createServer()
      server.unref()
      server.on('error', reject)
      server.listen(0, hostIp, () => {
        const address = server.address()
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
      })
    })
}

/**
 * The host port in the engine's bind failure: "Bind for 127.0.0.1:19000 failed: port is already
 * allocated" (another container) or "listen tcp4 127.0.0.1:19000: bind: address already in use"
 * (another process).
 */
export function takenPortOf(message: string): number | undefined {
  const match = /(?:Bind for|listen (?:tcp|udp)[46]?) \[?[0-9a-fA-F.:]*\]?:(\d+)/.exec(message)
  const port = Number(match?.[1])
  return Number.isInteger(port) && port > 0 ? port : undefined
}
