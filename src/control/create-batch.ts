import { type AuditRecord, appendAudit } from '../audit/audit-log.ts'
import { type Database, numberedSql, queryRows } from '../db/client.ts'
import { columnsOf } from '../db/deployment-rows.ts'
import { createGroupCommit } from '../db/group-commit.ts'
import { actorLabel, type ChangeSource } from '../domain/actor.ts'
import { imagesOf } from '../domain/services.ts'
import type { DeploymentSpec } from '../domain/spec.ts'
import { demandOf } from '../quotas/quota-limits.ts'

// Group commit for new deployments (db/group-commit.ts). Creates that arrive while earlier ones
// are being written go to the database together, as one statement: under load most of the cost of
// a create is its round trip and its commit (a socket write that wakes the server, and a
// transaction), not the rows. A batch is one statement, so one bad row (a name already taken)
// fails all of it; the group commit then writes each row alone, so the good ones land and the bad
// one gets its own error. The batch's audit entries are written in the same transaction.

export interface NewDeployment {
  id: string
  ownerId: string
  name: string
  spec: DeploymentSpec
  provider: string
  source: ChangeSource
}

/** At most this many rows per statement: the statement's JSON parameter stays small. */
const MAX_BATCH = 64
/** Batches in flight at once: enough to keep the database busy while the next batch gathers. */
const MAX_IN_FLIGHT = 2

/** Inserts deployments in groups; resolves each with its row as the driver gives it. */
export function createInsertBatcher(database: Database) {
  const insert = createGroupCommit(
    async (rows: NewDeployment[]) => {
      const inserted = await insertRows(database, rows)
      const byId = new Map(inserted.map((row) => [row.id as string, row]))
      return rows.map((row) => byId.get(row.id)!)
    },
    { maxBatch: MAX_BATCH, maxInFlight: MAX_IN_FLIGHT },
  )
  /** Inserts the deployment and its `created` event. */
  return { insert }
}

function insertRows(database: Database, rows: NewDeployment[]): Promise<Array<Record<string, unknown>>> {
  return database.db.transaction(async (tx) => {
    const inserted = await queryRows<Record<string, unknown>>(
      tx,
      numberedSql(INSERT_DEPLOYMENTS, insertParamsOf(rows)),
    )
    await appendAudit(tx, rows.map(createAuditRecord))
    return inserted
  })
}

/** The audit entry of a new deployment (what it runs, never its environment). */
export function createAuditRecord(row: NewDeployment): AuditRecord {
  return {
    ownerId: row.ownerId,
    source: row.source,
    action: 'deployment.create',
    target: `deployment:${row.id}`,
    detail: {
      name: row.name,
      ...(row.spec.services ? { images: imagesOf(row.spec) } : { image: row.spec.image }),
      provider: row.provider,
    },
  }
}

/** The parameters of INSERT_DEPLOYMENTS: the rows as one JSON array. */
export function insertParamsOf(rows: NewDeployment[]): unknown[] {
  const records = rows.map((r) => {
    const demand = demandOf(r.spec)
    return {
      id: r.id,
      owner_id: r.ownerId,
      name: r.name,
      spec: r.spec,
      provider: r.provider,
      actor: actorLabel(r.source.actor),
      replicas: demand.replicas,
      host_ports: demand.hostPorts,
      milli_cpus: demand.cpus,
      memory_mb: demand.memoryMb,
      disk_mb: demand.diskMb,
      volumes: demand.volumes,
    }
  })
  return [JSON.stringify(records)]
}

/** Deployments and their first events in one statement. One fixed text: a prepared statement. */
export const INSERT_DEPLOYMENTS = `
  with input as (
    select * from jsonb_to_recordset($1::jsonb)
      as x(id uuid, owner_id uuid, name text, spec jsonb, provider text, actor text, replicas int,
           host_ports int, milli_cpus bigint, memory_mb bigint, disk_mb bigint, volumes int)),
  d as (
    insert into deployments (id, owner_id, name, spec, provider, status, desired_state, stage, percent, event_seq,
                             quota_replicas, quota_host_ports, quota_milli_cpus, quota_memory_mb, quota_disk_mb, quota_volumes)
    select id, owner_id, name, spec, provider, 'pending', 'running', 'queued', 0, 1,
           replicas, host_ports, milli_cpus, memory_mb, disk_mb, volumes from input
    returning *),
  e as (
    insert into deployment_events (deployment_id, seq, type, status, stage, percent, actor)
    select d.id, 1, 'created', 'pending', 'queued', 0, input.actor from d join input on input.id = d.id)
  select ${columnsOf('d')} from d`
