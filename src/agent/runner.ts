import { z } from 'zod'
import {
  type Assignment,
  NODE_FAILURE_EVENTS,
  type ReportedInstance,
  type ReportedUsage,
} from '../domain/node.ts'
import { deploymentSpecSchema } from '../domain/spec.ts'
import type { DockerDeploymentTarget } from '../providers/docker/apply.ts'
import { type Provider, ProviderError } from '../providers/provider.ts'

// What an agent runs: its assignments, through the docker provider (same hardening, networks,
// ports, volumes as a single host), scoped to this node's containers on the engine. Each new list
// from the stream is converged in two passes: first everything this node runs that is no longer
// assigned to it is removed (containers and their volumes), then each assigned deployment whose
// assignment changed is applied. Nothing is started otherwise: an instance that exits stays
// exited until the control plane restarts it (a new generation), and while the stream is down the
// agent keeps what runs and starts nothing.

/** The server's list, checked like any input: a spec the single-host provider would refuse is refused. */
export const assignmentsMessageSchema = z.strictObject({
  assignments: z
    .array(
      z.strictObject({
        deploymentId: z.uuid(),
        ownerId: z.uuid(),
        stopped: z.boolean(),
        replica: z.number().int().min(0).max(1000),
        generation: z.number().int().min(0),
        volumeGeneration: z.number().int().min(0),
        spec: deploymentSpecSchema,
      }),
    )
    .max(10_000),
})

interface Desired {
  target: DockerDeploymentTarget
  /** Generation per replica, as assigned. */
  generations: Map<number, number>
  /** What was last applied successfully, to apply only what changed. */
  key: string
  /** Stopped: its instances are stopped (kept, with their volumes), not run. */
  stopped: boolean
}

/** Printable ASCII of a bounded length, as a heartbeat may carry it. */
const plain = (text: string) => text.replace(/[^\x20-\x7e]/g, '?').slice(0, 500)

export function createRunner(options: { docker: Provider; log: (line: string) => void }) {
  const { docker, log } = options
  let desired = new Map<string, Desired>()
  /** Deployment id → the key of its last successful apply. */
  const applied = new Map<string, string>()
  /** Deployment id → the key and error of its last failed apply. */
  const failed = new Map<string, { key: string; error: NonNullable<ReportedInstance['error']> }>()
  let converging: Promise<void> = Promise.resolve()
  let sampled: ReportedUsage[] = []

  const desiredOf = (assignments: Assignment[]): Map<string, Desired> => {
    const byDeployment = new Map<string, Desired>()
    for (const a of assignments) {
      let entry = byDeployment.get(a.deploymentId)
      if (!entry) {
        entry = {
          target: {
            id: a.deploymentId,
            ownerId: a.ownerId,
            spec: a.spec,
            restartGeneration: 0,
            volumeGeneration: a.volumeGeneration,
            replicas: [],
          },
          generations: new Map(),
          key: '',
          stopped: a.stopped,
        }
        byDeployment.set(a.deploymentId, entry)
      }
      entry.generations.set(a.replica, a.generation)
      entry.target.replicas!.push(a.replica)
      // One apply covers the node's replicas of a deployment: at the highest generation among
      // them (a replica behind it is recreated once, which a restart would do anyway).
      entry.target.restartGeneration = Math.max(entry.target.restartGeneration, a.generation)
    }
    for (const entry of byDeployment.values()) {
      entry.key = JSON.stringify([
        entry.target.spec,
        entry.target.restartGeneration,
        entry.target.replicas,
        entry.stopped,
      ])
    }
    return byDeployment
  }

  async function converge(): Promise<void> {
    // Removal first: a returning node must not run anything assigned elsewhere meanwhile.
    const present = new Set((await docker.list()).map((i) => i.deploymentId))
    for (const deploymentId of present) {
      if (desired.has(deploymentId)) continue
      await docker.remove(deploymentId)
      applied.delete(deploymentId)
      failed.delete(deploymentId)
      log(`removed deployment ${deploymentId}: no longer assigned to this node`)
    }
    for (const [deploymentId, entry] of desired) {
      if (applied.get(deploymentId) === entry.key) continue
      if (
        failed.get(deploymentId)?.key === entry.key &&
        failed.get(deploymentId)?.error.kind === 'permanent'
      ) {
        continue
      }
      try {
        if (entry.stopped) {
          await docker.stop(deploymentId)
        } else {
          await docker.apply(entry.target, { progress: async () => {}, signal: AbortSignal.timeout(600_000) })
        }
        applied.set(deploymentId, entry.key)
        failed.delete(deploymentId)
        log(
          `${entry.stopped ? 'stopped' : 'running'} deployment ${deploymentId}, replicas ${entry.target.replicas!.join(', ')}`,
        )
      } catch (error) {
        const kind = error instanceof ProviderError && error.kind === 'permanent' ? 'permanent' : 'transient'
        const named = error instanceof ProviderError ? error.eventType : undefined
        const eventType = NODE_FAILURE_EVENTS.find((known) => known === named)
        failed.set(deploymentId, {
          key: entry.key,
          error: { kind, message: plain((error as Error).message), ...(eventType ? { eventType } : {}) },
        })
        log(`could not run deployment ${deploymentId} (${kind}): ${(error as Error).message}`)
      }
    }
  }

  return {
    /** Takes a new list from the stream and converges to it (one convergence at a time). */
    assign(assignments: Assignment[]): Promise<void> {
      desired = desiredOf(assignments)
      converging = converging.then(converge, converge)
      return converging
    },

    /** Tries again what failed for a passing reason (called while the stream is up). */
    retry(): Promise<void> {
      if (![...failed.values()].some((f) => f.error.kind === 'transient')) return converging
      converging = converging.then(converge, converge)
      return converging
    },

    /**
     * Samples what each assigned deployment's replicas here use (the engine takes a second or so
     * per container, so this runs on its own schedule and heartbeats carry the last sample).
     */
    async sampleUsage(): Promise<void> {
      const next: ReportedUsage[] = []
      for (const deploymentId of desired.keys()) {
        try {
          next.push({ deploymentId, ...(await docker.stats(deploymentId)) })
        } catch {
          // Gone meanwhile, or the engine is busy: the next sample has it.
        }
      }
      sampled = next
    },

    usage: (): ReportedUsage[] => sampled,

    /** What this node runs of its assignments, for the heartbeat. */
    async instances(): Promise<ReportedInstance[]> {
      const out: ReportedInstance[] = []
      for (const [deploymentId, entry] of desired) {
        const observed = await docker.observe(deploymentId).catch(() => null)
        const error = failed.get(deploymentId)?.error
        for (const replica of entry.target.replicas!) {
          const instance = observed?.instances.find((i) => i.replica === replica)
          const generation = instance?.restartGeneration ?? 0
          if (!instance || (error && instance.state !== 'running')) {
            if (error)
              out.push({
                deploymentId,
                replica,
                generation: entry.generations.get(replica)!,
                state: 'failed',
                error,
              })
            continue
          }
          out.push({
            deploymentId,
            replica,
            generation,
            state: instance.state,
            ...(instance.exitCode === undefined ? {} : { exitCode: instance.exitCode }),
            ...(instance.oomKilled === undefined ? {} : { oomKilled: instance.oomKilled }),
            ...(instance.startedAt ? { startedAt: instance.startedAt.toISOString() } : {}),
            ports: instance.addresses ?? [],
          })
        }
      }
      return out
    },
  }
}

export type Runner = ReturnType<typeof createRunner>
