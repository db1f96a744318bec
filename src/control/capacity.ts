import { sql } from 'drizzle-orm'
import { type Database, queryRows } from '../db/client.ts'
import type { DeploymentRow, Fence } from '../db/deployment-rows.ts'
import { LeaseLostError } from '../domain/errors.ts'
import { describeDemand, type ResourceDemand, resourceDemandOf } from '../domain/resources.ts'
import type { Provider, ProviderRegistry } from '../providers/provider.ts'
import type { CapacityVerdict } from './decision.ts'

// Admission of starts against what a provider has room for. A provider that knows its size (the
// docker engine's CPUs and memory, times its overcommit) admits a start only when what its
// admitted deployments hold plus this one fits, and only in turn: starts wait in `pending` in the
// order they began to wait, so a large one is not passed over forever by small ones.
//
// Admission is decided under a per-provider lock and recorded on the row (holds_capacity) in the
// same transaction, so two control planes cannot both admit into the last room. The row gives the
// room back when it comes to rest (stopped, failed, deleted: moves.ts).

/** How soon a waiting start looks again for room. */
const WAIT_RETRY_MS = 2000

export function createCapacity(database: Database, providers: ProviderRegistry) {
  const { db } = database

  async function heldOn(provider: string, tx: typeof db): Promise<ResourceDemand> {
    const [held] = await queryRows<{ milli_cpus: string | number; memory_mb: string | number }>(
      tx,
      sql`select coalesce(sum((spec->>'replicas')::int * ceil((spec->'resources'->>'cpus')::numeric * 1000)), 0) as milli_cpus,
                 coalesce(sum((spec->>'replicas')::int * (spec->'resources'->>'memoryMb')::bigint), 0) as memory_mb
            from deployments where provider = ${provider} and holds_capacity`,
    )
    return { milliCpus: Number(held!.milli_cpus), memoryMb: Number(held!.memory_mb) }
  }

  const fits = (held: ResourceDemand, need: ResourceDemand, total: ResourceDemand) =>
    held.milliCpus + need.milliCpus <= total.milliCpus && held.memoryMb + need.memoryMb <= total.memoryMb

  return {
    /** How much of a provider that knows its size its admitted deployments hold; null when unknown. */
    async inUse(providerName: string): Promise<{ held: ResourceDemand; total: ResourceDemand } | null> {
      const total = await providers.get(providerName)?.capacity?.()
      if (!total) return null
      return { held: await heldOn(providerName, db), total }
    },

    /** Admits the start of `row` (recording that it holds its share), or says why it waits. */
    async admit(row: DeploymentRow, fence: Fence): Promise<CapacityVerdict> {
      const provider = providers.get(row.provider)
      if (provider?.place) return placeOn(provider.place.bind(provider), row)
      // A provider that does not know its size (now) admits every start.
      const total = await provider?.capacity?.()
      if (!total || row.holdsCapacity) return { admitted: true }
      const need = resourceDemandOf(row.spec)
      return db.transaction(async (tx) => {
        await tx.execute(
          sql`select pg_advisory_xact_lock(hashtextextended(${`capacity/${row.provider}`}, 0))`,
        )
        // Ahead in the queue: the waiting starts that began to wait earlier and could ever fit (one
        // larger than the whole provider must not hold everyone up behind it).
        const [queue] = await queryRows<{ ahead: number }>(
          tx,
          sql`select count(*)::int as ahead from deployments
               where provider = ${row.provider} and id <> ${row.id} and wait_reason is not null
                 and status = 'pending' and desired_state = 'running'
                 and queued_at < ${row.queuedAt ? sql`${row.queuedAt.toISOString()}::timestamptz` : sql`now()`}
                 and (spec->>'replicas')::int * ceil((spec->'resources'->>'cpus')::numeric * 1000) <= ${total.milliCpus}
                 and (spec->>'replicas')::int * (spec->'resources'->>'memoryMb')::bigint <= ${total.memoryMb}`,
        )
        const held = await heldOn(row.provider, tx)
        const ahead = queue!.ahead
        if (ahead === 0 && fits(held, need, total)) {
          const admitted = await queryRows(
            tx,
            sql`update deployments set holds_capacity = true
                 where id = ${row.id} and lease_owner = ${fence.owner} and lease_token = ${fence.token}
                returning id`,
          )
          if (admitted.length === 0) throw new LeaseLostError(row.id)
          return { admitted: true }
        }
        return {
          admitted: false,
          waitReason: 'insufficient_capacity',
          place: ahead + 1,
          retryInMs: WAIT_RETRY_MS,
          message:
            `waiting for capacity on ${row.provider}: needs ${describeDemand(need)}; ` +
            `${describeDemand(held)} of ${describeDemand(total)} are taken` +
            (ahead > 0
              ? `; ${ahead} earlier start${ahead === 1 ? '' : 's'} wait${ahead === 1 ? 's' : ''} first`
              : ''),
        }
      })
    },

    /** The place in its provider's queue of each deployment among `rows` waiting for capacity. */
    async placesOf(rows: readonly DeploymentRow[]): Promise<Map<string, number>> {
      const waiting = rows.filter((r) => r.waitReason === 'insufficient_capacity')
      if (waiting.length === 0) return new Map()
      const places = await queryRows<{ id: string; place: number }>(
        db,
        sql`select d.id, 1 + (select count(*)::int from deployments o
                               where o.provider = d.provider and o.id <> d.id and o.wait_reason is not null
                                 and o.status = 'pending' and o.desired_state = 'running'
                                 and o.queued_at < d.queued_at) as place
              from deployments d
             where d.id in (${sql.join(
               waiting.map((r) => sql`${r.id}::uuid`),
               sql`, `,
             )})`,
      )
      return new Map(places.map((p) => [p.id, Number(p.place)]))
    },
  }
}

/**
 * A provider that chooses nodes places the replicas as the start is admitted. Nothing fitting is
 * no queue: each waiting start tries again every few seconds, so one placed when a node frees or
 * joins may pass a larger one that waited longer.
 */
async function placeOn(place: NonNullable<Provider['place']>, row: DeploymentRow): Promise<CapacityVerdict> {
  const verdict = await place({
    id: row.id,
    ownerId: row.ownerId,
    spec: row.spec,
    restartGeneration: row.restartGeneration,
    volumeGeneration: row.volumeGeneration,
  })
  if (verdict.placed) return { admitted: true, placement: verdict.message }
  return { admitted: false, waitReason: 'no_node_fits', message: verdict.message, retryInMs: WAIT_RETRY_MS }
}

export type Capacity = ReturnType<typeof createCapacity>
