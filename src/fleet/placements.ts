import type { Db, Tx } from '../db/client.ts'
import { numberedSql, queryRows } from '../db/client.ts'
import {
  type Assignment,
  type NodeConnectivity,
  type ReportedInstance,
  rescheduleDelayMs,
} from '../domain/node.ts'
import type { ReplicaDemand } from '../domain/placement.ts'
import type { DeploymentSpec, SingleImageSpec } from '../domain/spec.ts'
import { openSpecSecrets } from '../secrets/spec-secrets.ts'
import type { Vault } from '../secrets/vault.ts'

// Reading and changing the fleet's placements: which replica runs on which node, at which
// generation, and what each node reports of it. The placements are the agents' assignments.

/** A replica's placement with what its node last reported. */
export interface PlacedReplica {
  replica: number
  nodeId: string
  nodeName: string
  generation: number
  ownerId: string
  connectivity: NodeConnectivity
  /** The node is being emptied: the replica moves elsewhere at once. */
  draining: boolean
  /** When the replica may move elsewhere (its node lost, the delay passed); null while online. */
  movableAt: Date | null
  /** The node's report of this replica at this generation or later, if any. */
  reported: ReportedInstance | undefined
}

interface PlacementRow {
  replica: number
  node_id: string
  owner_id: string
  scheduling: string
  node_name: string
  generation: number
  connectivity: NodeConnectivity
  lost_at: Date | string | null
  loss_count: number
  instances: ReportedInstance[] | null
}

/** Every placement of a deployment, in replica order, with its node's state and report. */
export async function placedReplicas(
  db: Db,
  deploymentId: string,
  rescheduleDelaySeconds: number,
): Promise<PlacedReplica[]> {
  const rows = await queryRows<PlacementRow>(
    db,
    numberedSql(
      `select p.replica, p.node_id, p.owner_id, n.scheduling, n.name as node_name, p.generation, n.connectivity, n.lost_at, n.loss_count,
         n.instances
       from fleet_placements p join fleet_nodes n on n.id = p.node_id
       where p.deployment_id = $1 order by p.replica`,
      [deploymentId],
    ),
  )
  return rows.map((row) => ({
    replica: row.replica,
    nodeId: row.node_id,
    nodeName: row.node_name,
    generation: row.generation,
    ownerId: row.owner_id,
    connectivity: row.connectivity,
    draining: row.scheduling === 'draining',
    movableAt:
      row.connectivity === 'lost' && row.lost_at !== null
        ? new Date(
            new Date(row.lost_at).getTime() + rescheduleDelayMs(rescheduleDelaySeconds, row.loss_count),
          )
        : null,
    reported: (row.instances ?? []).find(
      (i) => i.deploymentId === deploymentId && i.replica === row.replica && i.generation >= row.generation,
    ),
  }))
}

/**
 * Takes replicas off the node they were placed on (it was lost and the delay passed, or it drains),
 * unless they moved meanwhile or the node came back. Returns the replicas taken off.
 */
export async function unplace(
  db: Db,
  deploymentId: string,
  moves: Array<{ replica: number; nodeId: string }>,
  at: Date,
) {
  if (moves.length === 0) return []
  const rows = await removePlacements(
    db,
    `delete from fleet_placements p using jsonb_to_recordset($2::jsonb) as m(replica int, "nodeId" uuid)
     where p.deployment_id = $1 and p.replica = m.replica and p.node_id = m."nodeId"
       and exists (select 1 from fleet_nodes n
                   where n.id = p.node_id and (n.connectivity = 'lost' or n.scheduling = 'draining'))`,
    [deploymentId, JSON.stringify(moves)],
    at,
  )
  return rows.map((r) => r.replica)
}

/**
 * Runs a `delete from fleet_placements p …` and ends the spans of the placements it removed, in
 * one statement (so no span stays open for a placement that is gone). Returns what it removed.
 */
export function removePlacements(
  db: Db | Tx,
  deleteSql: string,
  params: unknown[],
  at: Date,
): Promise<Array<{ deployment_id: string; replica: number; node_id: string }>> {
  return queryRows(
    db,
    numberedSql(
      `with gone as (${deleteSql} returning p.deployment_id, p.replica, p.node_id),
       ended as (
         update fleet_placement_spans s set ended_at = $${params.length + 1} from gone
         where s.deployment_id = gone.deployment_id and s.replica = gone.replica and s.node_id = gone.node_id
           and s.ended_at is null
         returning 1)
       select deployment_id, replica, node_id from gone`,
      [...params, at],
    ),
  )
}

/** Removes placements of replicas the deployment no longer has; returns their nodes. */
export async function dropSurplus(
  db: Db,
  deploymentId: string,
  replicas: number,
  at: Date,
): Promise<string[]> {
  const rows = await removePlacements(
    db,
    'delete from fleet_placements p where p.deployment_id = $1 and p.replica >= $2',
    [deploymentId, replicas],
    at,
  )
  return rows.map((r) => r.node_id)
}

/** Raises the generation of every placement of the deployment to at least `generation`, or by one. */
export async function raiseGeneration(
  db: Db,
  deploymentId: string,
  to: { atLeast: number } | 'next',
): Promise<string[]> {
  const set = to === 'next' ? 'generation + 1' : 'greatest(generation, $2)'
  const rows = await queryRows<{ node_id: string }>(
    db,
    numberedSql(
      `update fleet_placements set generation = ${set}
       where deployment_id = $1 ${to === 'next' ? '' : 'and generation < $2'} returning node_id`,
      to === 'next' ? [deploymentId] : [deploymentId, to.atLeast],
    ),
  )
  return rows.map((r) => r.node_id)
}

/** Marks the deployment's placements stopped (or running again); returns the nodes whose list changed. */
export async function setStopped(db: Db, deploymentId: string, stopped: boolean): Promise<string[]> {
  const rows = await queryRows<{ node_id: string }>(
    db,
    numberedSql(
      'update fleet_placements set stopped = $2 where deployment_id = $1 and stopped <> $2 returning node_id',
      [deploymentId, stopped],
    ),
  )
  return rows.map((r) => r.node_id)
}

/** What one node is to run, as its agent's stream sends it. */
export async function assignmentsOf(
  db: Db,
  nodeId: string,
  vault: Pick<Vault, 'open'>,
): Promise<Assignment[]> {
  const rows = await queryRows<{
    deployment_id: string
    owner_id: string
    /** Whose data key seals the spec's secrets now (a handover seals them for the next holder). */
    sealed_for: string
    replica: number
    generation: number
    volume_generation: number
    spec: DeploymentSpec
    stopped: boolean
  }>(
    db,
    numberedSql(
      `select p.deployment_id, p.owner_id, d.owner_id as sealed_for, p.replica, p.generation, d.volume_generation, d.spec, p.stopped
       from fleet_placements p join deployments d on d.id = p.deployment_id
       where p.node_id = $1 order by p.deployment_id, p.replica`,
      [nodeId],
    ),
  )
  const assignments: Assignment[] = []
  for (const row of rows) {
    assignments.push({
      deploymentId: row.deployment_id,
      ownerId: row.owner_id,
      replica: row.replica,
      generation: row.generation,
      volumeGeneration: row.volume_generation,
      // The agent runs it: its secret env values go to it opened, over its own stream only.
      spec: await openSpecSecrets(
        vault,
        { ownerId: row.sealed_for, deploymentId: row.deployment_id },
        row.spec,
      ),
      stopped: row.stopped,
    })
  }
  return assignments
}

/** What one replica of this spec asks of a node. */
export function replicaDemandOf(spec: SingleImageSpec): ReplicaDemand {
  return {
    milliCpus: Math.ceil(spec.resources.cpus * 1000),
    memoryMb: spec.resources.memoryMb,
    diskMb: spec.resources.diskMb,
    gpus: spec.resources.gpus,
    ...(spec.placement?.gpuModel ? { gpuModel: spec.placement.gpuModel } : {}),
    nodeLabels: spec.placement?.nodeLabels ?? {},
  }
}
