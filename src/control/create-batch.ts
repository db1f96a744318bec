import { type AuditRecord, appendAudit } from '../audit/audit-log.ts'
import { type Database, numberedSql, queryRows } from '../db/client.ts'
import { columnsOf } from '../db/deployment-rows.ts'
import { actorLabel, type ChangeSource } from '../domain/actor.ts'
import type { DeploymentSpec } from '../domain/spec.ts'
import { demandOf } from '../quotas/quota-limits.ts'

// Group commit for new deployments. Creates that arrive while earlier ones are being written go
// to the database together, as one statement: under load most of the cost of a create is its
// round trip and its commit (a socket write that wakes the server, and a transaction), not the
// rows. A lone create still goes out on the next turn of the event loop, on its own.
//
// A batch is one statement, so one bad row (a name already taken) fails all of it. The batch is
// then written again one row at a time, so each create gets its own answer: the good ones land,
// the bad one gets its own error. The batch's audit entries are written in the same transaction.

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

interface Waiting {
  input: NewDeployment
  resolve: (row: Record<string, unknown>) => void
  reject: (error: unknown) => void
}

export function createInsertBatcher(database: Database) {
  const queue: Waiting[] = []
  let inFlight = 0
  let scheduled = false

  const schedule = () => {
    if (scheduled || queue.length === 0 || inFlight >= MAX_IN_FLIGHT) return
    scheduled = true
    // The next turn, not now: the creates of this turn (concurrent requests) join the batch.
    setImmediate(flush)
  }

  const flush = () => {
    scheduled = false
    const batch = queue.splice(0, MAX_BATCH)
    if (batch.length === 0) return
    inFlight++
    write(batch).finally(() => {
      inFlight--
      schedule()
    })
    schedule()
  }

  const write = async (batch: Waiting[]) => {
    try {
      const rows = await insertRows(
        database,
        batch.map((w) => w.input),
      )
      const byId = new Map(rows.map((row) => [row.id as string, row]))
      for (const waiting of batch) waiting.resolve(byId.get(waiting.input.id)!)
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error)
        return
      }
      await Promise.all(batch.map((waiting) => write([waiting])))
    }
  }

  return {
    /** Inserts the deployment and its `created` event; resolves with the row as the driver gives it. */
    insert(input: NewDeployment): Promise<Record<string, unknown>> {
      return new Promise((resolve, reject) => {
        queue.push({ input, resolve, reject })
        schedule()
      })
    },
  }
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
    detail: { name: row.name, image: row.spec.image, provider: row.provider },
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
