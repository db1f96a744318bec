import assert from 'node:assert/strict'
import { decide } from '../../src/control/decide.ts'
import type {
  CapacityVerdict,
  DecideSettings,
  Decision,
  Facts,
  FundingVerdict,
} from '../../src/control/decision.ts'
import type { DeploymentRow } from '../../src/db/deployment-rows.ts'
import type { Status } from '../../src/domain/lifecycle.ts'
import { type DeploymentSpecInput, deploymentSpecSchema } from '../../src/domain/spec.ts'
import type { Observed, ObservedInstance } from '../../src/providers/provider.ts'

// A world for decide(): a deployment row with its counters, what the executor would find when
// asked (funding, the provider's observation, a probe, an apply), and a driver that answers
// decide()'s questions from it as the executor does, down to the final decision.

export const NOW = new Date('2030-01-01T12:00:00Z')
export const minutesAgo = (m: number) => new Date(NOW.getTime() - m * 60_000)
export const settings: DecideSettings = {
  resyncSeconds: 30,
  health: {
    restartLadderSeconds: [0, 30, 300],
    ladderResetSeconds: 600,
    maxRestarts: 2,
    restartWindowSeconds: 3600,
  },
  maxUnbilledStartSeconds: 600,
}

export const withCheckSpec = {
  name: 'web',
  image: 'example/web:1',
  ports: [{ containerPort: 80 }],
  healthCheck: { type: 'http' as const, port: 80, intervalSeconds: 10, unhealthyThreshold: 3 },
}
export const withCheck: DeploymentSpecInput = withCheckSpec

export function rowOf(
  fields: Omit<Partial<DeploymentRow>, 'spec'> & { spec?: DeploymentSpecInput } = {},
): DeploymentRow {
  const { spec, ...rest } = fields
  return {
    id: '00000000-0000-4000-8000-000000000001',
    ownerId: '00000000-0000-4000-8000-000000000002',
    name: 'web',
    spec: deploymentSpecSchema.parse(spec ?? { name: 'web', image: 'example/web:1' }),
    provider: 'simulated',
    status: 'pending',
    desiredState: 'running',
    stage: 'queued',
    percent: 0,
    stopReason: null,
    error: null,
    endpoints: [],
    restartGeneration: 0,
    appliedRestartGeneration: 0,
    eventSeq: 1,
    quotaReplicas: 1,
    quotaHostPorts: 0,
    quotaMilliCpus: 500,
    quotaMemoryMb: 256,
    quotaDiskMb: 1024,
    quotaVolumes: 0,
    healthyStreak: 0,
    unhealthyStreak: 0,
    restartCount: 0,
    restartWindowStartedAt: null,
    attempts: 0,
    retryingSince: null,
    startingSince: null,
    handover: null,
    handoverSeq: 0,
    volumeGeneration: 0,
    waitReason: null,
    queuedAt: null,
    holdsCapacity: false,
    nextReconcileAt: NOW,
    leaseOwner: 'reconciler-test',
    leaseToken: 1,
    leaseExpiresAt: NOW,
    deployStartedAt: null,
    runningSince: null,
    createdAt: minutesAgo(60),
    updatedAt: minutesAgo(1),
    ...rest,
  }
}

export function instance(fields: Partial<ObservedInstance> = {}): ObservedInstance {
  return {
    instanceId: 'i-0',
    deploymentId: '00000000-0000-4000-8000-000000000001',
    ownerId: '00000000-0000-4000-8000-000000000002',
    replica: 0,
    state: 'running',
    health: 'healthy',
    ...fields,
  }
}
export const observedOf = (...instances: ObservedInstance[]): Observed => ({
  deploymentId: '00000000-0000-4000-8000-000000000001',
  instances,
  endpoints: [],
})
export const healthy = observedOf(instance())
/** A provider that cannot judge health (docker): the control plane probes. */
export const unjudged = observedOf(instance({ health: 'unknown' }))

export interface World {
  funding?: FundingVerdict
  observed?: Observed | null
  probeFails?: boolean
  applied?: Observed
  capacity?: CapacityVerdict
}

/** Runs decide() as the executor does, answering each question from `world`, to the final decision. */
export function drive(
  row: DeploymentRow,
  world: World = {},
): { decision: Decision; asked: string[]; start: Status[] } {
  const facts: Facts = {}
  const asked: string[] = []
  let start: Status[] = []
  for (let round = 0; round < 10; round++) {
    const decision = decide(row, facts, NOW, settings)
    if (decision.kind === 'need-funding') {
      asked.push('funding')
      facts.funding = world.funding ?? { admitted: true }
    } else if (decision.kind === 'need-capacity') {
      asked.push('capacity')
      facts.capacity = world.capacity ?? { admitted: true }
    } else if (decision.kind === 'need-observation') {
      asked.push('observe')
      facts.observed = world.observed === undefined ? healthy : world.observed
    } else if (decision.kind === 'need-probe') {
      asked.push('probe')
      facts.probe = { failed: world.probeFails ? { replica: 0, detail: 'GET / answered 500' } : null }
    } else if (decision.kind === 'apply') {
      asked.push('apply')
      start = decision.start.events.map((e) => e.status!)
      facts.applied = { observed: world.applied ?? healthy, deployStartedAt: decision.start.deployStartedAt }
    } else {
      return { decision, asked, start }
    }
  }
  throw new Error('decide() kept asking')
}

/** `asked | provider call | statuses passed | next look`, e.g. `observe | - | unhealthy | 30000`. */
export function outcome(row: DeploymentRow, world: World = {}): string {
  const { decision, asked, start } = drive(row, world)
  if (decision.kind === 'refused') return `refused ${decision.from}>${decision.to}`
  assert.equal(decision.kind, 'write')
  if (decision.kind !== 'write') throw new Error('unreachable')
  const { change, effect } = decision
  const passed = [...start, ...(change.events ?? []).flatMap((e) => (e.status ? [e.status] : []))]
  const next = change.nextInMs === null ? 'never' : change.nextInMs === 0 ? 'now' : String(change.nextInMs)
  return `${asked.join('+') || '-'} | ${effect ?? '-'} | ${passed.join('>') || '='} | ${next}`
}
