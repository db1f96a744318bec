import { randomUUID } from 'node:crypto'
import { appendFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { abortableDelay } from '../../domain/delay.ts'
import type { ProgressStage } from '../../domain/lifecycle.ts'
import {
  type ApplyContext,
  type DeploymentTarget,
  type LogLine,
  type Observed,
  type ObservedInstance,
  type Provider,
  ProviderError,
  type Usage,
} from '../provider.ts'

/**
 * The `simulated` provider: staged progress with configurable latency and failure injection, for
 * demos, the dashboard and load tests. It runs nothing. Its instances are files under `stateDir`
 * (one folder per deployment, one file per instance with a random id, like a container id) so
 * that they outlive a crashed control plane exactly as containers would, and a duplicate replica
 * would show up as two files.
 *
 * Failure injection, per deployment through spec labels:
 *   berth.simulate/fail-at: pulling | creating | starting   → apply fails permanently there
 *   berth.simulate/fail-at: health-checking                 → instances report unhealthy
 */
export interface SimulatedProviderOptions {
  stateDir: string
  pullMs: number
  createMs: number
  startMs: number
}

export const FAIL_AT_LABEL = 'berth.simulate/fail-at'

interface InstanceFile extends Omit<ObservedInstance, 'startedAt'> {
  startedAt?: string
  restartGeneration: number
  unhealthy: boolean
}

export function createSimulatedProvider(options: SimulatedProviderOptions): Provider {
  const dirOf = (deploymentId: string) => join(options.stateDir, deploymentId)

  async function readInstances(deploymentId: string): Promise<InstanceFile[]> {
    let names: string[]
    try {
      names = await readdir(dirOf(deploymentId))
    } catch {
      return []
    }
    const out: InstanceFile[] = []
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      try {
        out.push(JSON.parse(await readFile(join(dirOf(deploymentId), name), 'utf8')) as InstanceFile)
      } catch {
        // A file removed between readdir and read is simply gone.
      }
    }
    return out.sort((a, b) => a.replica - b.replica)
  }

  async function writeInstance(instance: InstanceFile): Promise<void> {
    const dir = dirOf(instance.deploymentId)
    const tmp = join(dir, `.${instance.instanceId}.tmp`)
    await writeFile(tmp, JSON.stringify(instance))
    // rename is atomic: a crash leaves either the old file or the new one, never half of one.
    await rename(tmp, join(dir, `${instance.instanceId}.json`))
  }

  async function log(deploymentId: string, text: string, stream: LogLine['stream'] = 'stdout') {
    const line: LogLine = { at: new Date(), stream, text }
    await appendFile(join(dirOf(deploymentId), 'log.jsonl'), `${JSON.stringify(line)}\n`)
  }

  const toObserved = (i: InstanceFile): ObservedInstance => ({
    instanceId: i.instanceId,
    deploymentId: i.deploymentId,
    ownerId: i.ownerId,
    replica: i.replica,
    state: i.state,
    health: i.state !== 'running' ? 'unknown' : i.unhealthy ? 'unhealthy' : 'healthy',
    ...(i.startedAt ? { startedAt: new Date(i.startedAt) } : {}),
  })

  async function observe(deploymentId: string): Promise<Observed | null> {
    const instances = await readInstances(deploymentId)
    if (instances.length === 0) return null
    return { deploymentId, instances: instances.map(toObserved), endpoints: [] }
  }

  async function stage(ctx: ApplyContext, target: DeploymentTarget, name: ProgressStage, ms: number) {
    await ctx.progress(name)
    await abortableDelay(ms, ctx.signal)
    if (target.spec.labels?.[FAIL_AT_LABEL] === name) {
      await log(target.id, `simulated failure at ${name}`, 'stderr')
      throw new ProviderError('permanent', `simulated failure at stage ${name}`, {
        eventType: `${name}_failed`,
      })
    }
  }

  return {
    name: 'simulated',
    capabilities: { gpu: true, volumes: true, replicas: true },
    ping: async () => true,

    async apply(target, ctx) {
      await mkdir(dirOf(target.id), { recursive: true })
      const existing = await readInstances(target.id)
      const byReplica = new Map(existing.map((i) => [i.replica, i]))
      const missing = Array.from({ length: target.spec.replicas }, (_, r) => r).filter(
        (r) => !byReplica.has(r),
      )
      if (missing.length > 0) {
        await stage(ctx, target, 'pulling', options.pullMs)
        await log(target.id, `pulled ${target.spec.image}`)
        await stage(ctx, target, 'creating', options.createMs)
        for (const replica of missing) {
          const instance: InstanceFile = {
            instanceId: randomUUID().replaceAll('-', ''),
            deploymentId: target.id,
            ownerId: target.ownerId,
            replica,
            state: 'created',
            health: 'unknown',
            restartGeneration: target.restartGeneration,
            unhealthy: target.spec.labels?.[FAIL_AT_LABEL] === 'health-checking',
          }
          await writeInstance(instance)
          byReplica.set(replica, instance)
        }
      }
      const toStart = [...byReplica.values()].filter(
        (i) => i.state !== 'running' || i.restartGeneration < target.restartGeneration,
      )
      if (toStart.length > 0) {
        await stage(ctx, target, 'starting', options.startMs)
        for (const instance of toStart) {
          await writeInstance({
            ...instance,
            state: 'running',
            startedAt: new Date().toISOString(),
            restartGeneration: target.restartGeneration,
          })
          await log(target.id, `replica ${instance.replica} started`)
        }
      }
      // Replicas beyond the spec's count are scaled away.
      for (const surplus of [...byReplica.values()].filter((i) => i.replica >= target.spec.replicas)) {
        await rm(join(dirOf(target.id), `${surplus.instanceId}.json`), { force: true })
      }
      return (await observe(target.id)) ?? { deploymentId: target.id, instances: [], endpoints: [] }
    },

    observe,

    async stop(deploymentId) {
      for (const instance of await readInstances(deploymentId)) {
        if (instance.state === 'stopped') continue
        await writeInstance({ ...instance, state: 'stopped' })
        await log(deploymentId, `replica ${instance.replica} stopped`)
      }
    },

    async remove(deploymentId) {
      await rm(dirOf(deploymentId), { recursive: true, force: true })
    },

    async restart(deploymentId) {
      for (const instance of await readInstances(deploymentId)) {
        await writeInstance({ ...instance, state: 'running', startedAt: new Date().toISOString() })
        await log(deploymentId, `replica ${instance.replica} restarted`)
      }
    },

    async *logs(deploymentId, { tail, follow, signal }) {
      let text = ''
      try {
        text = await readFile(join(dirOf(deploymentId), 'log.jsonl'), 'utf8')
      } catch {
        // No log yet.
      }
      const lines = text.split('\n').filter(Boolean)
      let sent = Math.max(0, lines.length - tail)
      for (const raw of lines.slice(sent)) yield parseLine(raw)
      sent = lines.length
      while (follow && !signal.aborted) {
        // Nothing runs, so a simulated instance says it is alive once a second while followed.
        await abortableDelay(1000, signal).catch(() => {})
        if (signal.aborted) return
        yield { at: new Date(), stream: 'stdout', text: 'simulated workload is running' }
      }
    },

    async stats(deploymentId) {
      const running = (await readInstances(deploymentId)).filter((i) => i.state === 'running').length
      const usage: Usage = {
        cpuPercent: 0,
        memoryBytes: running * 16 * 1024 * 1024,
        networkRxBytes: 0,
        networkTxBytes: 0,
      }
      return usage
    },

    async list() {
      let ids: string[]
      try {
        ids = await readdir(options.stateDir)
      } catch {
        return []
      }
      const all: ObservedInstance[] = []
      for (const id of ids) all.push(...(await readInstances(id)).map(toObserved))
      return all
    },
  }
}

function parseLine(raw: string): LogLine {
  const parsed = JSON.parse(raw) as { at: string; stream: LogLine['stream']; text: string }
  return { at: new Date(parsed.at), stream: parsed.stream, text: parsed.text }
}
