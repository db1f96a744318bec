import { sql } from 'drizzle-orm'
import type { Logger } from 'pino'
import type { NotificationsConfig } from '../config/notifications-schema.ts'
import type { Capacity } from '../control/capacity.ts'
import { type Database, queryRows } from '../db/client.ts'
import type { OperatorEventType } from '../domain/event-types.ts'
import { appendOutbox } from '../events/outbox.ts'
import type { Metrics } from '../metrics/registry.ts'
import type { ProviderRegistry } from '../providers/provider.ts'

// The operator's alerts: every `checkIntervalSeconds` the conditions worth waking someone for are
// looked at (a provider not answering, a provider nearly full, a chain watcher behind, deliveries
// piling up), and each change of one is told once: raised, then resolved. The outbox is the
// memory: a condition's last event says whether it stands, so a restart or a second replica never
// tells the same thing twice (one checker at a time, under a transaction-scoped lock).

const CHECK_LOCK = sql`hashtextextended('berth/operator-alerts', 0)`

export interface Condition {
  /** What the condition is about, stable across checks: `provider:docker`, `backlog`. */
  key: string
  type: Exclude<OperatorEventType, 'operator.resolved'>
  raised: boolean
  summary: string
  detail: Record<string, unknown>
}

export interface OperatorAlertDeps {
  database: Database
  providers: ProviderRegistry
  capacity: Pick<Capacity, 'inUse'>
  metrics: Pick<Metrics, 'chainCursorLag'>
  settings: NotificationsConfig['operator']
  logger: Logger
}

const percentOf = (held: number, total: number) => (total > 0 ? Math.round((held / total) * 100) : 0)

export async function conditionsNow(deps: OperatorAlertDeps): Promise<Condition[]> {
  const { settings } = deps
  const found: Condition[] = []
  for (const provider of deps.providers.all()) {
    const up = await provider.ping().catch(() => false)
    found.push({
      key: `provider:${provider.name}`,
      type: 'operator.provider_unavailable',
      raised: !up,
      summary: `Provider ${provider.name} does not answer`,
      detail: { provider: provider.name },
    })
    const use = up ? await deps.capacity.inUse(provider.name).catch(() => null) : null
    if (use) {
      const percent = Math.max(
        percentOf(use.held.milliCpus, use.total.milliCpus),
        percentOf(use.held.memoryMb, use.total.memoryMb),
      )
      found.push({
        key: `capacity:${provider.name}`,
        type: 'operator.capacity_high',
        raised: percent >= settings.capacityPercent,
        summary: `Provider ${provider.name} is ${percent}% full`,
        detail: { provider: provider.name, percent },
      })
    }
  }
  for (const { labels, value } of (await deps.metrics.chainCursorLag.get()).values) {
    found.push({
      key: `chain:${labels.network}:${labels.consumer}`,
      type: 'operator.chain_lagging',
      raised: value >= settings.chainLagBlocks,
      summary: `The ${labels.consumer} watcher on ${labels.network} is ${value} blocks behind`,
      detail: { network: labels.network, consumer: labels.consumer, blocks: value },
    })
  }
  const [backlog] = await queryRows<{ due: number }>(
    deps.database.db,
    sql`select count(*)::int as due from notify_deliveries where state = 'pending' and next_attempt_at <= now()`,
  )
  found.push({
    key: 'backlog',
    type: 'operator.webhook_backlog',
    raised: (backlog?.due ?? 0) >= settings.backlogDeliveries,
    summary: `${backlog?.due ?? 0} deliveries are due and not yet made`,
    detail: { due: backlog?.due ?? 0 },
  })
  return found
}

/** Tells each condition that changed since it was last told; returns the events written. */
export async function tellChanges(database: Database, conditions: Condition[]): Promise<string[]> {
  return database.db.transaction(async (tx) => {
    const [lock] = await queryRows<{ got: boolean }>(
      tx,
      sql`select pg_try_advisory_xact_lock(${CHECK_LOCK}) as got`,
    )
    if (!lock?.got) return []
    const told: string[] = []
    for (const condition of conditions) {
      const [last] = await queryRows<{ type: string }>(
        tx,
        sql`select type from outbox_events where owner_id is null and payload->>'key' = ${condition.key}
             order by seq desc limit 1`,
      )
      const standing = last !== undefined && last.type !== 'operator.resolved'
      if (standing === condition.raised) continue
      const type = condition.raised ? condition.type : 'operator.resolved'
      const summary = condition.raised ? condition.summary : `Resolved: ${condition.summary}`
      await appendOutbox(tx, [
        { ownerId: null, type, payload: { key: condition.key, summary, ...condition.detail } },
      ])
      told.push(`${type} ${condition.key}`)
    }
    return told
  })
}

export function startOperatorAlerts(deps: OperatorAlertDeps, intervalSeconds: number): () => Promise<void> {
  let running: Promise<unknown> = Promise.resolve()
  const timer = setInterval(() => {
    running = running
      .then(async () => {
        const told = await tellChanges(deps.database, await conditionsNow(deps))
        if (told.length > 0) deps.logger.warn({ alerts: told }, 'operator alerts')
      })
      .catch((error: unknown) => deps.logger.warn({ err: error }, 'operator alert check failed'))
  }, intervalSeconds * 1000)
  timer.unref()
  return async () => {
    clearInterval(timer)
    await running
  }
}
