import { randomUUID } from 'node:crypto'
import { abortableDelay } from '../../domain/delay.ts'
import type { ProgressStage } from '../../domain/lifecycle.ts'
import { imagesOf, unitsOf } from '../../domain/services.ts'
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
import { type JournalRecord, openJournal, type SimulatedInstance } from './journal.ts'

/**
 * The `simulated` provider: staged progress with configurable latency and failure injection, for
 * demos, the dashboard and load tests. It runs nothing. Its instances (each with a random id, like
 * a container id) are recorded in a journal under `stateDir` (journal.ts), so that they outlive a
 * crashed control plane exactly as containers would, and a duplicate replica would show up as two
 * instances.
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
  /** The simulated machine's size for capacity admission; absent: room for everything. */
  cpus?: number | undefined
  memoryMb?: number | undefined
}

export const FAIL_AT_LABEL = 'berth.simulate/fail-at'

export function createSimulatedProvider(options: SimulatedProviderOptions): Provider {
  const journal = openJournal(options.stateDir)

  const instancesOf = (deploymentId: string): SimulatedInstance[] =>
    [...(journal.table().get(deploymentId)?.values() ?? [])].sort((a, b) => a.replica - b.replica)

  const logRecord = (deploymentId: string, text: string, stream: LogLine['stream'] = 'stdout') =>
    ({ op: 'log', deploymentId, line: { at: new Date().toISOString(), stream, text } }) as const

  const toObserved = (i: SimulatedInstance): ObservedInstance => ({
    instanceId: i.instanceId,
    deploymentId: i.deploymentId,
    ownerId: i.ownerId,
    replica: i.replica,
    ...(i.service ? { service: i.service } : {}),
    state: i.state,
    health: i.state !== 'running' ? 'unknown' : i.unhealthy ? 'unhealthy' : 'healthy',
    ...(i.startedAt ? { startedAt: new Date(i.startedAt) } : {}),
  })

  async function observe(deploymentId: string): Promise<Observed | null> {
    const instances = instancesOf(deploymentId)
    if (instances.length === 0) return null
    return { deploymentId, instances: instances.map(toObserved), endpoints: [] }
  }

  /** Reports a stage, takes its time, and fails there when the deployment's label asks it to. */
  async function stage(ctx: ApplyContext, target: DeploymentTarget, name: ProgressStage, ms: number) {
    await ctx.progress(name)
    await abortableDelay(ms, ctx.signal)
    if (target.spec.labels?.[FAIL_AT_LABEL] === name) {
      throw new ProviderError('permanent', `simulated failure at stage ${name}`, {
        eventType: `${name}_failed`,
      })
    }
  }

  return {
    name: 'simulated',
    capabilities: { gpu: true, volumes: true, replicas: true, services: true },
    ping: async () => true,

    async apply(target, ctx) {
      const byReplica = new Map(instancesOf(target.id).map((i) => [i.replica, i]))
      // What the apply did is appended in one write at its end (or at its failure), each instance
      // with the state it ended in.
      const changed = new Map<string, SimulatedInstance>()
      const records: JournalRecord[] = []
      try {
        // Services all start at once here: a simulated instance is healthy the moment it starts,
        // so what a service depends on is always ready before it.
        const units = unitsOf(target.spec)
        const missing = units.filter((u) => !byReplica.has(u.index))
        if (missing.length > 0) {
          await stage(ctx, target, 'pulling', options.pullMs)
          records.push(logRecord(target.id, `pulled ${imagesOf(target.spec).join(', ')}`))
          await stage(ctx, target, 'creating', options.createMs)
          for (const { index: replica, service } of missing) {
            const instance: SimulatedInstance = {
              instanceId: randomUUID().replaceAll('-', ''),
              deploymentId: target.id,
              ownerId: target.ownerId,
              replica,
              ...(service ? { service } : {}),
              state: 'created',
              health: 'unknown',
              restartGeneration: target.restartGeneration,
              unhealthy: target.spec.labels?.[FAIL_AT_LABEL] === 'health-checking',
            }
            byReplica.set(replica, instance)
            changed.set(instance.instanceId, instance)
          }
        }
        const toStart = [...byReplica.values()].filter(
          (i) => i.state !== 'running' || i.restartGeneration < target.restartGeneration,
        )
        if (toStart.length > 0) {
          await stage(ctx, target, 'starting', options.startMs)
          for (const instance of toStart) {
            const started: SimulatedInstance = {
              ...instance,
              state: 'running',
              startedAt: new Date().toISOString(),
              restartGeneration: target.restartGeneration,
            }
            byReplica.set(instance.replica, started)
            changed.set(started.instanceId, started)
            records.push(logRecord(target.id, `replica ${instance.replica} started`))
          }
        }
        // Replicas beyond the spec's count are scaled away.
        const count = units.length
        for (const surplus of [...byReplica.values()].filter((i) => i.replica >= count)) {
          byReplica.delete(surplus.replica)
          changed.delete(surplus.instanceId)
          records.push({ op: 'drop', deploymentId: target.id, instanceId: surplus.instanceId })
        }
      } catch (error) {
        if (error instanceof ProviderError) records.push(logRecord(target.id, error.message, 'stderr'))
        throw error
      } finally {
        // What was created before a failure stays, as a created container would.
        journal.append([
          ...[...changed.values()].map((instance) => ({ op: 'put', instance }) as const),
          ...records,
        ])
      }
      const instances = [...byReplica.values()].sort((a, b) => a.replica - b.replica).map(toObserved)
      return { deploymentId: target.id, instances, endpoints: [] }
    },

    observe,

    async stop(deploymentId) {
      const records: JournalRecord[] = []
      for (const instance of instancesOf(deploymentId)) {
        if (instance.state === 'stopped') continue
        records.push({ op: 'put', instance: { ...instance, state: 'stopped' } })
        records.push(logRecord(deploymentId, `replica ${instance.replica} stopped`))
      }
      journal.append(records)
    },

    async remove(deploymentId) {
      if (journal.table().has(deploymentId)) journal.append([{ op: 'remove', deploymentId }])
    },

    // Simulated instances have no volumes or ports to keep: releasing them is removing them.
    async capacity() {
      if (options.cpus === undefined && options.memoryMb === undefined) return null
      return {
        milliCpus: options.cpus === undefined ? Number.MAX_SAFE_INTEGER : Math.floor(options.cpus * 1000),
        memoryMb: options.memoryMb ?? Number.MAX_SAFE_INTEGER,
      }
    },

    async release(deploymentId) {
      if (journal.table().has(deploymentId)) journal.append([{ op: 'remove', deploymentId }])
    },

    async restart(deploymentId) {
      const records: JournalRecord[] = []
      for (const instance of instancesOf(deploymentId)) {
        const restarted: SimulatedInstance = {
          ...instance,
          state: 'running',
          startedAt: new Date().toISOString(),
        }
        records.push({ op: 'put', instance: restarted })
        records.push(logRecord(deploymentId, `replica ${instance.replica} restarted`))
      }
      journal.append(records)
    },

    async logs(deploymentId, { tail, follow, signal }) {
      const lines = journal.logs(deploymentId)
      return (async function* (): AsyncGenerator<LogLine> {
        for (const line of lines.slice(Math.max(0, lines.length - tail))) yield line
        while (follow && !signal.aborted) {
          // Nothing runs, so a simulated instance says it is alive once a second while followed.
          await abortableDelay(1000, signal).catch(() => {})
          if (signal.aborted) return
          yield { at: new Date(), stream: 'stdout', text: 'simulated workload is running' }
        }
      })()
    },

    async stats(deploymentId) {
      // Nothing runs: each running instance is said to hold 16 MiB, summed per service too.
      const running = instancesOf(deploymentId).filter((i) => i.state === 'running')
      const usageOf = (count: number): Usage => ({
        cpuPercent: 0,
        memoryBytes: count * 16 * 1024 * 1024,
        networkRxBytes: 0,
        networkTxBytes: 0,
      })
      const services = [...new Set(running.flatMap((i) => (i.service ? [i.service] : [])))]
      if (services.length === 0) return usageOf(running.length)
      return {
        ...usageOf(running.length),
        services: Object.fromEntries(
          services.map((name) => [name, usageOf(running.filter((i) => i.service === name).length)]),
        ),
      }
    },

    /**
     * Nothing runs, so a command "runs" in each running replica and succeeds. Its log line names
     * the program only: the arguments may hold a secret.
     */
    async exec(deploymentId, command) {
      const running = instancesOf(deploymentId).filter((i) => i.state === 'running')
      journal.append(running.map((i) => logRecord(deploymentId, `replica ${i.replica} ran ${command[0]}`)))
      return running.map((i) => ({ replica: i.replica, exitCode: 0, output: '' }))
    },

    async list() {
      const all: ObservedInstance[] = []
      for (const instances of journal.table().values()) all.push(...[...instances.values()].map(toObserved))
      return all
    },
  }
}
