import { type Db, numberedSql, queryRows } from '../db/client.ts'
import { abortableDelay } from '../domain/delay.ts'
import type { ReportedInstance, ReportedUsage } from '../domain/node.ts'
import type { EventBus } from '../events/bus.ts'
import { type AllowList, isInternalAddress, parseAllowList } from '../outbound/address-policy.ts'
import { endpointUrlOf } from '../providers/docker/container-spec.ts'
import { sumUsage } from '../providers/docker/stats.ts'
import {
  type ImageRequester,
  type Observed,
  type ObservedInstance,
  type Provider,
  ProviderError,
  type SingleImageTarget,
  singleImageTarget,
} from '../providers/provider.ts'
import type { LogRelay } from './log-relay.ts'
import {
  dropSurplus,
  type PlacedReplica,
  placedReplicas,
  raiseGeneration,
  removePlacements,
  replicaDemandOf,
  setStopped,
  unplace,
} from './placements.ts'
import type { ReplicaPlacement, Scheduler } from './scheduler.ts'

// The `fleet` provider: deployments run on community nodes. The control plane never reaches a
// node; it writes placements (the scheduler's choice of node per replica, which are the agents'
// assignments), tells the nodes' streams, and reads back what each agent reports in its
// heartbeats. An apply therefore waits for reports: it returns once every replica runs at its
// generation on its node, or fails with what the agent said went wrong.
//
// A replica whose node is lost counts as missing. It is moved (taken off the lost node, placed
// again) once the node has been lost for the reschedule delay; until then the apply says it
// waits. A replica on a draining node is moved at once. A moved replica starts on its new node
// with empty volumes: a node's volumes are its own, and they go with the replica's placement.
//
// Stopping a deployment marks its placements stopped: the agents stop the instances and keep
// them and their volumes, and the replicas start there again. Failing, handing over or deleting
// it takes its placements away: the agents remove the instances and their volumes, the nodes'
// room is free for others at once, and a later start is placed again, maybe on other nodes.

export interface FleetProviderOptions {
  db: Db
  scheduler: Scheduler
  bus: Pick<EventBus, 'nodeAssignmentsChanged'>
  rescheduleDelaySeconds: number
  now: () => Date
  /** How long an apply or restart waits for the agents' reports before the step tries again. */
  reportWaitMs?: number
  /** How often a waiting apply reads the reports. */
  pollMs?: number
  /** Internal addresses a node may report its ports on (`outbound.allow`); any other is ignored. */
  allow?: AllowList
  logs: Pick<LogRelay, 'open'>
  /** The operator's registry policy, as for the docker provider (nodes run nothing it refuses). */
  images?: { check(image: string, requester: ImageRequester): Promise<void> }
}

export type FleetProvider = Provider & Required<Pick<Provider, 'place'>>

export function createFleetProvider(options: FleetProviderOptions): FleetProvider {
  const { db, scheduler, bus, now } = options
  const allow = options.allow ?? parseAllowList([])
  const reportWaitMs = options.reportWaitMs ?? 120_000
  const pollMs = options.pollMs ?? 250
  const placed = (deploymentId: string) => placedReplicas(db, deploymentId, options.rescheduleDelaySeconds)
  const tell = (nodeIds: Iterable<string>) => {
    for (const nodeId of new Set(nodeIds)) bus.nodeAssignmentsChanged(nodeId)
  }

  const placeAll = async (target: SingleImageTarget): Promise<ReplicaPlacement[]> => {
    const results = await scheduler.place({
      deploymentId: target.id,
      ownerId: target.ownerId,
      replicas: target.spec.replicas,
      demand: replicaDemandOf(target.spec),
      generation: target.restartGeneration,
    })
    tell(results.flatMap((r) => (r.placed && !r.existing ? [r.nodeId] : [])))
    return results
  }

  /** Moves replicas off lost nodes whose delay passed and off draining nodes; says which moved. */
  const moveAway = async (target: SingleImageTarget, replicas: PlacedReplica[]) => {
    const at = now()
    const leaving = replicas.filter((r) => r.draining || (r.movableAt !== null && r.movableAt <= at))
    const moved = await unplace(
      db,
      target.id,
      leaving.map((r) => ({ replica: r.replica, nodeId: r.nodeId })),
      at,
    )
    tell(leaving.map((r) => r.nodeId))
    return leaving.filter((r) => moved.includes(r.replica))
  }

  async function converge(target: SingleImageTarget, signal: AbortSignal): Promise<string[]> {
    tell(await dropSurplus(db, target.id, target.spec.replicas, now()))
    const moved = await moveAway(target, await placed(target.id))
    const results = await placeAll(target)
    const unplaced = results.find((r) => !r.placed)
    if (unplaced && !unplaced.placed) {
      throw new ProviderError('transient', `no node fits replica ${unplaced.replica}: ${unplaced.reason}`)
    }
    tell(await raiseGeneration(db, target.id, { atLeast: target.restartGeneration }))
    tell(await setStopped(db, target.id, false))
    signal.throwIfAborted()
    return moved.map((r) => {
      const to = results.find((p) => p.replica === r.replica)
      const why = r.draining ? 'draining' : 'lost'
      return `replica ${r.replica} moved from ${why} node ${r.nodeName} to node ${to?.placed ? to.nodeId : '?'}`
    })
  }

  /** Waits until every replica reports running at its generation; throws what stands in the way. */
  async function awaitReports(
    target: SingleImageTarget,
    signal: AbortSignal,
    progress?: (stage: 'creating' | 'starting') => Promise<void>,
  ): Promise<PlacedReplica[]> {
    const deadline = Date.now() + reportWaitMs
    for (;;) {
      const replicas = await placed(target.id)
      const waiting = standingIn(replicas, target.spec.replicas, now())
      if (!waiting) return replicas
      if (waiting.kind === 'permanent') {
        throw new ProviderError('permanent', waiting.message, {
          ...(waiting.eventType ? { eventType: waiting.eventType } : {}),
        })
      }
      if (waiting.kind === 'blocked' || Date.now() >= deadline) {
        throw new ProviderError('transient', waiting.message)
      }
      if (progress) {
        const states = replicas.map((r) => r.reported?.state)
        await progress(states.some((s) => s === 'created' || s === 'running') ? 'starting' : 'creating')
      }
      await abortableDelay(pollMs, signal)
    }
  }

  const release = async (deploymentId: string) => {
    const nodes = (await placed(deploymentId)).map((r) => r.nodeId)
    await scheduler.release(deploymentId)
    tell(nodes)
  }

  return {
    name: 'fleet',
    // The scheduler places GPU replicas, but agents run containers without GPUs so far.
    capabilities: { gpu: false, volumes: true, replicas: true, services: false },

    async ping() {
      return true
    },

    ...(options.images ? { checkImage: options.images.check } : {}),

    async place(deployment) {
      const target = singleImageTarget(deployment, 'fleet')
      const results = await placeAll(target)
      const unplaced = results.find((r) => !r.placed)
      if (unplaced && !unplaced.placed) {
        // All or nothing: replicas placed while another fits nowhere would run (unbilled: the
        // deployment waits) and hold their nodes' room from everyone else. Only what this call
        // placed goes: a stopped deployment's kept replicas (and their volumes) stay.
        const fresh = results.flatMap((r) => (r.placed && !r.existing ? [r.replica] : []))
        const gone = await removePlacements(
          db,
          'delete from fleet_placements p where p.deployment_id = $1 and p.replica = any($2::int[])',
          [target.id, `{${fresh.join(',')}}`],
          now(),
        )
        tell(gone.map((g) => g.node_id))
        return {
          placed: false,
          message: `no node fits replica ${unplaced.replica} (${unplaced.failed}): ${unplaced.reason}`,
        }
      }
      return {
        placed: true,
        message: results
          .map((r) => (r.placed ? `replica ${r.replica} on node ${r.nodeId}: ${r.reason}` : ''))
          .join('; '),
      }
    },

    async apply(deployment, ctx) {
      const target = singleImageTarget(deployment, 'fleet')
      const moves = await converge(target, ctx.signal)
      if (moves.length > 0) await ctx.progress('scheduling', moves.join('; '))
      await ctx.progress('pulling')
      const replicas = await awaitReports(target, ctx.signal, (stage) => ctx.progress(stage))
      return (
        observedOf(target.id, replicas, allow) ?? { deploymentId: target.id, instances: [], endpoints: [] }
      )
    },

    async observe(deploymentId) {
      return observedOf(deploymentId, await placed(deploymentId), allow)
    },

    // A stop keeps the replicas where they are, stopped, with their volumes and their nodes' room,
    // for a later start there; a failure, a handover and a delete take them off their nodes.
    async stop(deploymentId) {
      tell(await setStopped(db, deploymentId, true))
    },
    remove: release,
    release,

    async restart(deploymentId) {
      tell(await raiseGeneration(db, deploymentId, 'next'))
      // As a restart on one engine returns once the instances run again, this returns once the
      // nodes report the new run (or after the wait: the reconciler then finds what is missing).
      const deadline = Date.now() + reportWaitMs
      while (Date.now() < deadline) {
        const replicas = await placed(deploymentId)
        if (replicas.every((r) => r.reported?.state === 'running' && !r.draining)) return
        if (replicas.some((r) => r.connectivity === 'lost' || r.reported?.state === 'failed')) return
        await abortableDelay(pollMs, AbortSignal.timeout(pollMs * 2))
      }
    },

    // Read from the nodes that run it, through the log relay (log-relay.ts).
    async logs(deploymentId, { tail, follow, signal }) {
      const replicas = await placed(deploymentId)
      const nodes = [...new Set(replicas.filter((r) => r.connectivity === 'online').map((r) => r.nodeId))]
      if (replicas.length > 0 && nodes.length === 0) {
        throw new ProviderError('unavailable', 'no node running this deployment answers now')
      }
      return options.logs.open(deploymentId, nodes, { tail, follow, signal })
    },

    async stats(deploymentId) {
      const rows = await queryRows<{ usage: ReportedUsage[] }>(
        db,
        numberedSql(
          `select n.usage from fleet_nodes n
           where n.connectivity = 'online'
             and n.id in (select node_id from fleet_placements where deployment_id = $1)`,
          [deploymentId],
        ),
      )
      const reported = rows.flatMap((row) => row.usage.filter((u) => u.deploymentId === deploymentId))
      if (reported.length === 0) {
        throw new ProviderError('transient', 'no node has reported what this deployment uses yet')
      }
      return sumUsage(reported)
    },

    // Every placement, for the orphan sweep: one whose deployment is gone is removed with it.
    async list() {
      const rows = await queryRows<{
        deployment_id: string
        owner_id: string
        replica: number
        node_id: string
      }>(db, numberedSql('select deployment_id, owner_id, replica, node_id from fleet_placements', []))
      return rows.map((row) => ({
        instanceId: `${row.node_id}/${row.replica}`,
        deploymentId: row.deployment_id,
        ownerId: row.owner_id,
        replica: row.replica,
        state: 'created' as const,
        health: 'unknown' as const,
      }))
    },
  }
}

type Standing =
  | { kind: 'permanent'; message: string; eventType?: string }
  | { kind: 'blocked' | 'waiting'; message: string }
  | null

/** What keeps the deployment from running on its nodes, if anything. */
function standingIn(replicas: PlacedReplica[], count: number, at: Date): Standing {
  for (let replica = 0; replica < count; replica++) {
    const placement = replicas.find((r) => r.replica === replica)
    if (!placement) return { kind: 'blocked', message: `replica ${replica} is not placed on any node` }
    const { reported, nodeName } = placement
    if (placement.connectivity === 'lost') {
      const when = placement.movableAt && placement.movableAt > at ? placement.movableAt.toISOString() : 'now'
      return {
        kind: 'blocked',
        message: `replica ${replica} waits for its node ${nodeName}, which stopped answering; it moves to another node at ${when}`,
      }
    }
    if (reported?.state === 'failed' && reported.error?.kind === 'permanent') {
      return {
        kind: 'permanent',
        message: `node ${nodeName}, replica ${replica}: ${reported.error.message}`,
        ...(reported.error.eventType ? { eventType: reported.error.eventType } : {}),
      }
    }
    if (reported?.state !== 'running') {
      const detail = reported?.state === 'failed' ? `: ${reported.error?.message ?? 'failed'}` : ''
      return {
        kind: 'waiting',
        message: `node ${nodeName} has not started replica ${replica} yet${detail}`,
      }
    }
  }
  return null
}

/**
 * The deployment as its nodes report it. Replicas on lost or draining nodes are left out (they are
 * missing: the reconciler applies again, which moves them when it is time).
 */
export function observedOf(
  deploymentId: string,
  replicas: PlacedReplica[],
  allow: AllowList,
): Observed | null {
  if (replicas.length === 0) return null
  const instances: ObservedInstance[] = []
  const endpoints: Observed['endpoints'] = []
  for (const placement of replicas) {
    const reported = placement.reported
    if (!reported || placement.connectivity === 'lost' || placement.draining) continue
    // The control plane probes these addresses and tenants are given them: a node may not point
    // either at the control plane's own network (a loopback or private address) unless allowed.
    const addresses = (reported.ports ?? []).filter(
      (p) => !isInternalAddress(p.host) || allow.allows({ host: p.host, port: p.port, address: p.host }),
    )
    instances.push({ ...instanceOf(deploymentId, placement, reported), addresses })
    for (const port of addresses) {
      endpoints.push({
        containerPort: port.containerPort,
        protocol: port.protocol,
        url: endpointUrlOf(port.host, port.port, port.protocol),
      })
    }
  }
  return { deploymentId, instances, endpoints }
}

function instanceOf(
  deploymentId: string,
  placement: PlacedReplica,
  reported: ReportedInstance,
): ObservedInstance {
  return {
    instanceId: `${placement.nodeId}/${placement.replica}`,
    deploymentId,
    ownerId: placement.ownerId,
    replica: placement.replica,
    state: reported.state === 'failed' ? 'exited' : reported.state,
    health: 'unknown',
    ...(reported.exitCode === undefined ? {} : { exitCode: reported.exitCode }),
    ...(reported.oomKilled === undefined ? {} : { oomKilled: reported.oomKilled }),
    ...(reported.startedAt ? { startedAt: new Date(reported.startedAt) } : {}),
    addresses: reported.ports ?? [],
  }
}
