import { randomUUID } from 'node:crypto'
import { and, count, desc, eq, inArray, ne, sql } from 'drizzle-orm'
import { appendAudit } from '../audit/audit-log.ts'
import { type Database, numberedSql, queryRows, uniqueViolation } from '../db/client.ts'
import { type DeploymentRow, fromDriver } from '../db/deployment-rows.ts'
import { deploymentEvents, deployments, idempotencyKeys } from '../db/schema/index.ts'
import { actorLabel, type ChangeSource } from '../domain/actor.ts'
import { conflict, notFound } from '../domain/errors.ts'
import type { DesiredState, Intent, Status, StopReason } from '../domain/lifecycle.ts'
import type { DeploymentSpec } from '../domain/spec.ts'
import type { EventBus } from '../events/bus.ts'
import { eventRowsOf } from '../events/event-log.ts'
import { appendOutbox } from '../events/outbox.ts'
import { createAuditRecord, createInsertBatcher, INSERT_DEPLOYMENTS, insertParamsOf } from './create-batch.ts'
import { createFencedWrites, type FencedWrites } from './leases.ts'

// The deployments repository: creates, reads, changes of desired state, and the marks that make
// rows due. A row change and its events commit together (events/event-log.ts numbers them); the
// reconciler's own writes are fenced by its lease (leases.ts).

export interface DeploymentStore extends FencedWrites {
  create(input: NewDeploymentInput): Promise<{ row: DeploymentRow; replayed: boolean }>
  get(ownerId: string, id: string): Promise<DeploymentRow>
  list(
    ownerId: string,
    filter: { status?: Status; limit: number; offset: number },
  ): Promise<{
    items: DeploymentRow[]
    total: number
  }>
  /** A change of desired state; berth itself (billing, NFT watcher) names its reason and message. */
  requestIntent(ownerId: string, id: string, intent: Intent, options: IntentOptions): Promise<DeploymentRow>
  /** The desired state now (for cancelling work it no longer wants); `deleted` when the row is gone. */
  desiredStateOf(id: string): Promise<DesiredState>
  /** Makes every live deployment due now (start-up adoption: observe everything once). */
  markAllDue(): Promise<number>
  /** Makes these deployments due now, if they are meant to be up (a watcher saw them change). */
  markDue(ids: string[]): Promise<number>
  /** The same for every deployment on one provider (its watch reconnected after a gap). */
  markProviderDue(provider: string): Promise<number>
  /** Drops every lease. Only safe when no other process can hold one (PGlite). */
  clearLeases(): Promise<void>
  countByStatus(): Promise<Array<{ status: string; n: number }>>
  liveIds(ids: string[]): Promise<Set<string>>
}

export interface NewDeploymentInput {
  ownerId: string
  spec: DeploymentSpec
  /** The spec as stored, when it differs (its secret env values sealed). */
  storedSpec?: DeploymentSpec
  /**
   * With an idempotency key: a digest of what was asked, which a replay must match. Keyed by the
   * owner's secret (vault.fingerprint), so a stored digest confirms no guess of a secret it covers.
   */
  requestHash?: string
  /** The new deployment's id (what sealed values are bound to); a fresh one when absent. */
  id?: string
  provider: string
  /** Who asks, for the audit log and the deployment's first event. */
  source: ChangeSource
  idempotencyKey?: string
  /**
   * Admission (the account's quotas), asked after a replay is ruled out and before anything is
   * written; what it returns is called once the write has landed or failed.
   */
  admit?: () => Promise<() => void>
}

export interface IntentOptions {
  /** Who asks: a request's principal, berth itself (billing), or the chain (an NFT transfer). */
  source: ChangeSource
  reason?: StopReason
  message?: string
}

export function createDeploymentStore(database: Database, bus: EventBus): DeploymentStore {
  const db = database.db
  const inserts = createInsertBatcher(database)

  async function get(ownerId: string, id: string): Promise<DeploymentRow> {
    const [row] = await db
      .select()
      .from(deployments)
      .where(and(eq(deployments.id, id), eq(deployments.ownerId, ownerId)))
    // Another owner's deployment answers exactly like a missing one.
    if (!row) throw notFound('deployment')
    return row
  }

  async function create(input: NewDeploymentInput): Promise<{ row: DeploymentRow; replayed: boolean }> {
    const requestHash = input.requestHash ?? ''
    const replay = async () => {
      if (!input.idempotencyKey) return undefined
      const [prior] = await db
        .select()
        .from(idempotencyKeys)
        .where(
          and(eq(idempotencyKeys.accountId, input.ownerId), eq(idempotencyKeys.key, input.idempotencyKey)),
        )
      if (!prior) return undefined
      if (prior.requestHash !== requestHash) {
        throw conflict('this Idempotency-Key was already used with a different request body')
      }
      return { row: await get(input.ownerId, prior.deploymentId), replayed: true }
    }
    const earlier = await replay()
    if (earlier) return earlier
    const release = await input.admit?.()
    const id = input.id ?? randomUUID()
    const fresh = {
      id,
      ownerId: input.ownerId,
      name: input.spec.name,
      spec: input.storedSpec ?? input.spec,
      provider: input.provider,
      source: input.source,
    }
    try {
      const outcome = input.idempotencyKey
        ? await db.transaction(async (tx) => {
            const key = input.idempotencyKey!
            // Concurrent requests with one key queue here; each later one then finds the first's row.
            await tx.execute(
              sql`select pg_advisory_xact_lock(hashtextextended(${`${input.ownerId}/${key}`}, 0))`,
            )
            const [prior] = await tx
              .select()
              .from(idempotencyKeys)
              .where(and(eq(idempotencyKeys.accountId, input.ownerId), eq(idempotencyKeys.key, key)))
            if (prior) return { prior }
            const [inserted] = await queryRows<Record<string, unknown>>(
              tx,
              numberedSql(INSERT_DEPLOYMENTS, insertParamsOf([fresh])),
            )
            await tx
              .insert(idempotencyKeys)
              .values({ accountId: input.ownerId, key, requestHash, deploymentId: id })
            await appendAudit(tx, [createAuditRecord(fresh)])
            return { row: fromDriver(inserted!) }
          })
        : { row: fromDriver(await inserts.insert(fresh)) }
      if ('prior' in outcome) return (await replay())!
      bus.changed(outcome.row.id, outcome.row.ownerId)
      bus.wake()
      return { row: outcome.row, replayed: false }
    } catch (error) {
      if (uniqueViolation(error) === 'deployments_owner_name_key') {
        throw conflict(`a deployment named "${input.spec.name}" already exists`, { field: 'name' })
      }
      if (uniqueViolation(error) === 'deployments_nft_key') {
        throw conflict('this NFT is already bound to a live deployment', { field: 'nft' })
      }
      throw error
    } finally {
      release?.()
    }
  }

  async function requestIntent(
    ownerId: string,
    id: string,
    intent: Intent,
    options: IntentOptions,
  ): Promise<DeploymentRow> {
    const current = await get(ownerId, id)
    if (current.desiredState === 'deleted') throw conflict('the deployment is deleted or being deleted')
    const patch: Partial<DeploymentRow> = {}
    let desired: DesiredState = current.desiredState
    let message: string
    if (intent === 'stop') {
      desired = 'stopped'
      patch.stopReason = options.reason ?? 'user'
      message = options.message ?? 'stop requested'
    } else if (intent === 'delete') {
      desired = 'deleted'
      message = 'delete requested'
    } else {
      desired = 'running'
      patch.stopReason = null
      // A restart, or a start after a failure, asks the reconciler to start instances afresh.
      if (intent === 'restart' || current.status === 'failed') {
        patch.restartGeneration = sql`${deployments.restartGeneration} + 1` as unknown as number
      }
      message = options.message ?? `${intent} requested`
    }
    const row = await db.transaction(async (tx) => {
      const [updated] = await tx
        .update(deployments)
        .set({
          ...patch,
          desiredState: desired,
          attempts: 0,
          retryingSince: null,
          nextReconcileAt: sql`now()`,
          eventSeq: sql`${deployments.eventSeq} + 1`,
          updatedAt: sql`now()`,
        })
        .where(
          and(
            eq(deployments.id, id),
            eq(deployments.ownerId, ownerId),
            ne(deployments.desiredState, 'deleted'),
          ),
        )
        .returning()
      if (!updated) throw conflict('the deployment is deleted or being deleted')
      await tx
        .insert(deploymentEvents)
        .values(
          eventRowsOf(id, updated.eventSeq, actorLabel(options.source.actor), [
            { type: 'desired_state_changed', message, data: { desired } },
          ]),
        )
      if (intent === 'stop' && options.reason === 'out_of_funds') {
        await appendOutbox(tx, [
          {
            ownerId,
            type: 'deployment.stopped_out_of_funds',
            deploymentId: id,
            payload: { deploymentId: id, name: updated.name },
          },
        ])
      }
      await appendAudit(tx, [
        {
          ownerId,
          source: options.source,
          action: `deployment.${intent}`,
          target: `deployment:${id}`,
          detail: { name: updated.name, ...(options.reason ? { reason: options.reason } : {}) },
        },
      ])
      return updated
    })
    bus.changed(row.id, row.ownerId, { intent: true })
    bus.wake()
    return row
  }

  async function desiredStateOf(id: string): Promise<DesiredState> {
    const [row] = await db
      .select({ desired: deployments.desiredState })
      .from(deployments)
      .where(eq(deployments.id, id))
    return row?.desired ?? 'deleted'
  }

  return {
    ...createFencedWrites(database, bus),
    desiredStateOf,
    create,
    get,
    async list(ownerId, filter) {
      const where = and(
        eq(deployments.ownerId, ownerId),
        filter.status ? eq(deployments.status, filter.status) : ne(deployments.status, 'deleted'),
      )
      const [items, [total]] = await Promise.all([
        db
          .select()
          .from(deployments)
          .where(where)
          .orderBy(desc(deployments.createdAt), desc(deployments.id))
          .limit(filter.limit)
          .offset(filter.offset),
        db.select({ n: count() }).from(deployments).where(where),
      ])
      return { items, total: total?.n ?? 0 }
    },

    requestIntent,

    async markAllDue() {
      const rows = await db
        .update(deployments)
        .set({ nextReconcileAt: sql`now()` })
        .where(ne(deployments.status, 'deleted'))
        .returning({ id: deployments.id })
      return rows.length
    },

    async markDue(ids) {
      if (ids.length === 0) return 0
      const rows = await db
        .update(deployments)
        .set({ nextReconcileAt: sql`now()` })
        .where(and(inArray(deployments.id, ids), inArray(deployments.status, watchedStatuses)))
        .returning({ id: deployments.id })
      return rows.length
    },

    async markProviderDue(provider) {
      const rows = await db
        .update(deployments)
        .set({ nextReconcileAt: sql`now()` })
        .where(and(eq(deployments.provider, provider), inArray(deployments.status, watchedStatuses)))
        .returning({ id: deployments.id })
      return rows.length
    },

    async clearLeases() {
      await db
        .update(deployments)
        .set({ leaseOwner: null, leaseExpiresAt: null })
        .where(sql`${deployments.leaseOwner} is not null`)
    },

    async countByStatus() {
      return db
        .select({ status: deployments.status, n: count() })
        .from(deployments)
        .groupBy(deployments.status)
    },

    async liveIds(ids) {
      if (ids.length === 0) return new Set()
      const rows = await queryRows<{ id: string }>(
        db,
        sql`select id from deployments where status <> 'deleted' and id in ${ids}`,
      )
      return new Set(rows.map((r) => r.id))
    },
  }
}

/** Statuses in which a deployment's instances are supposed to be up, so a change must be looked at. */
const watchedStatuses: Status[] = ['deploying', 'starting', 'running', 'unhealthy']
