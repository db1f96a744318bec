import { createServer } from 'node:net'

// Host ports for published container ports. The control plane will allocate them from a range in
// the database (unique even across concurrent deployments, issue 3 §4) and pass them in the
// target; until then this default asks the OS for a free one. The OS answer can go stale before
// the engine binds it: the provider then removes the container and reports a transient error so
// the next apply allocates again.

export type AllocatePort = (key: string) => Promise<number>

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
