import type Docker from 'dockerode'
import type { ResourceDemand } from '../../domain/resources.ts'

// The engine's size for capacity admission: its CPUs and memory (as `docker info` reports them),
// times the operator's overcommit. Read at most once a minute: a machine's size rarely changes,
// and admission asks for it on every start.

const FRESH_MS = 60_000

export function createEngineSize(docker: Docker, overcommit: number) {
  let known: { size: ResourceDemand; at: number } | undefined
  return {
    /** The size, or null when the engine cannot say now (every start is then admitted). */
    async get(): Promise<ResourceDemand | null> {
      if (known && Date.now() - known.at < FRESH_MS) return known.size
      try {
        const info = (await docker.info()) as { NCPU?: number; MemTotal?: number }
        if (!info.NCPU || !info.MemTotal) return null
        const size = {
          milliCpus: Math.floor(info.NCPU * 1000 * overcommit),
          memoryMb: Math.floor((info.MemTotal / 2 ** 20) * overcommit),
        }
        known = { size, at: Date.now() }
        return size
      } catch {
        return known?.size ?? null
      }
    },
  }
}
