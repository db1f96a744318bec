import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { NotificationsConfig } from '../config/notifications-schema.ts'
import type { Database } from '../db/client.ts'
import { type ClaimedDelivery, claimDue, type Outcome, recordOutcomes, turnOff } from './deliveries.ts'
import { tellableOf } from './publisher.ts'
import { type Attempt, attempt, type SendContext } from './senders.ts'
import type { TargetConfig } from './target-inputs.ts'
import type { TargetRow } from './target-view.ts'

// The loop that makes delivery attempts: claims what is due (as many as it has free slots, at most
// `concurrencyPerTarget` at one target and `concurrencyPerOwner` for one owner), makes each
// attempt without waiting for the others, writes the outcomes that arrive while a write is under
// way together in the next, and claims again as slots free up (a slot is free once its outcome is
// written). It sleeps until a new delivery is committed (NOTIFY) or a second passes (retries come
// due by the clock; another replica's NOTIFY may be lost).

const POLL_MS = 1000
/**
 * As attempts finish, the loop claims again once this many slots are free (at most a quarter of
 * them): a claim costs about the same for one row as for sixteen, and claiming each freed slot
 * alone spends the database on claims (an embedded database most of all). New work and the poll
 * claim whatever is free, so slots held by slow receivers never keep the others waiting long.
 */
const CLAIM_AT_LEAST = 16
const OUTCOMES_PER_WRITE = 500
const GATHER_MS = 10

export interface SenderLoopDeps {
  database: Database
  config: NotificationsConfig
  ctx: SendContext
  logger: Logger
  openConfig(row: TargetRow): Promise<TargetConfig>
  /** Called after each attempt, for metrics. */
  attempted?(attempt: Attempt, kind: string): void
}

export function createSenderLoop(deps: SenderLoopDeps) {
  const { database, config } = deps
  const owner = `sender-${randomUUID()}`
  // Longer than any attempt can take; a claim of a process that died is free again this soon after.
  const leaseSeconds = config.attemptTimeoutSeconds + 5
  let inFlight = 0
  let stopped = true
  let looping: Promise<void> | undefined
  let wake: (() => void) | undefined
  const running = new Set<Promise<void>>()
  // Opened target configs, by id and last change: opening (decrypting) one per attempt would cost
  // more than the attempt at a local receiver.
  const opened = new Map<string, { updatedAt: number; config: TargetConfig }>()

  const claimBatch = Math.max(1, Math.min(CLAIM_AT_LEAST, Math.ceil(config.concurrency / 4)))
  /** Whether new work arrived, or the poll came, since the last claim. */
  let urgent = true
  /** `work`: something may be due (new, or by the clock); `slot`: an attempt finished. */
  const signal = (why: 'work' | 'slot') => {
    if (why === 'work') urgent = true
    wake?.()
    wake = undefined
  }
  const sleep = () =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        urgent = true
        resolve()
      }, POLL_MS)
      wake = () => {
        clearTimeout(timer)
        resolve()
      }
    })

  async function configOf(row: TargetRow): Promise<TargetConfig> {
    const known = opened.get(row.id)
    if (known && known.updatedAt === row.updatedAt.getTime()) return known.config
    const config = await deps.openConfig(row)
    if (opened.size > 10_000) opened.clear()
    opened.set(row.id, { updatedAt: row.updatedAt.getTime(), config })
    return config
  }

  async function deliver(
    delivery: ClaimedDelivery,
    event: ReturnType<typeof tellableOf> | undefined,
    row?: TargetRow,
  ) {
    let outcome: Outcome
    if (!event || !row) {
      outcome = {
        delivery,
        attempt: { ok: false, status: null, latencyMs: 0 },
        cancelled: row ? 'the event is past its retention' : 'the target was deleted',
      }
    } else if (!row.enabled && event.type !== 'webhook.test') {
      outcome = {
        delivery,
        attempt: { ok: false, status: null, latencyMs: 0 },
        cancelled: 'the target is disabled',
      }
    } else {
      const previous = row.previousSecretUntil !== null && row.previousSecretUntil > deps.ctx.now()
      const made = await attempt(await configOf(row), event, { previous }, deps.ctx)
      deps.attempted?.(made, row.kind)
      outcome = { delivery, attempt: made }
    }
    await new Promise<void>((done) => {
      toWrite.push({ outcome, row, done })
      void writeOutcomes()
    })
  }

  const toWrite: Array<{ outcome: Outcome; row: TargetRow | undefined; done: () => void }> = []
  let writing: Promise<void> | undefined
  /** Writes the outcomes waiting, in batches; one writer at a time, the others' outcomes join it. */
  function writeOutcomes(): Promise<void> {
    if (writing) return writing
    writing = (async () => {
      // Waits a moment for the outcomes of answers arriving now to join this write: an embedded
      // database holds the event loop while it runs, so they arrive between writes, not during.
      await new Promise((resolve) => setTimeout(resolve, GATHER_MS))
      while (toWrite.length > 0) {
        const batch = toWrite.splice(0, OUTCOMES_PER_WRITE)
        try {
          const ends = await recordOutcomes(
            database,
            owner,
            batch.map((b) => b.outcome),
            config.retryDelaysSeconds,
          )
          for (const { outcome, row } of batch) {
            const reason = ends.get(outcome.delivery.id)
            if (!reason || !row) continue
            const end = { targetId: row.id, ownerId: row.ownerId, kind: row.kind, shown: row.shown, reason }
            await turnOff(database, end)
          }
        } catch (error) {
          // The claims expire, and the attempts are made again.
          deps.logger.warn({ err: error }, 'writing delivery outcomes failed')
        } finally {
          for (const b of batch) b.done()
        }
      }
    })().finally(() => {
      writing = undefined
      // An outcome that arrived as the last batch finished has no writer yet.
      if (toWrite.length > 0) void writeOutcomes()
    })
    return writing
  }

  async function loadAndDeliver(claimed: ClaimedDelivery[]) {
    const seqs = [...new Set(claimed.map((c) => c.eventSeq))]
    const ids = [...new Set(claimed.map((c) => c.targetId))]
    const [events, targets] = await Promise.all([
      database.query<Parameters<typeof tellableOf>[0] & { seq: string }>(
        `select seq, id, owner_id, type, deployment_id, payload, only_target_id, created_at
           from outbox_events where seq = any($1::bigint[])`,
        [seqs],
      ),
      database.db.query.notifyTargets.findMany({ where: (t, { inArray }) => inArray(t.id, ids) }),
    ])
    const eventBySeq = new Map(events.map((e) => [Number(e.seq), tellableOf(e)]))
    const targetById = new Map(targets.map((t) => [t.id, t]))
    for (const delivery of claimed) {
      const job = deliver(delivery, eventBySeq.get(delivery.eventSeq), targetById.get(delivery.targetId))
        .catch((error: unknown) =>
          deps.logger.warn({ err: error, delivery: delivery.id }, 'delivery attempt failed'),
        )
        .finally(() => {
          inFlight--
          running.delete(job)
          signal('slot')
        })
      running.add(job)
    }
  }

  async function loop() {
    while (!stopped) {
      const free = config.concurrency - inFlight
      if (free > 0 && (urgent || free >= claimBatch || inFlight === 0)) {
        urgent = false
        try {
          const claimed = await claimDue(database, owner, {
            limit: free,
            perTarget: config.concurrencyPerTarget,
            perOwner: config.concurrencyPerOwner,
            leaseSeconds,
          })
          if (claimed.length > 0) {
            inFlight += claimed.length
            await loadAndDeliver(claimed).catch((error: unknown) => {
              inFlight -= claimed.length
              throw error
            })
            continue
          }
        } catch (error) {
          deps.logger.warn({ err: error }, 'claiming deliveries failed; trying again')
        }
      }
      if (!stopped) await sleep()
    }
  }

  return {
    /** Something may be due now (a delivery committed, a retry asked for). */
    wake: () => signal('work'),
    start() {
      stopped = false
      looping = loop()
    },
    async stop() {
      stopped = true
      signal('work')
      await looping
      await Promise.allSettled([...running])
    },
  }
}

export type SenderLoop = ReturnType<typeof createSenderLoop>
