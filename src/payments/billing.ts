import { sql } from 'drizzle-orm'
import { appendAudit } from '../audit/audit-log.ts'
import type { Config } from '../config/schema.ts'
import type { DeploymentStore } from '../control/deployment-store.ts'
import { type Database, type Db, queryRows, type Tx } from '../db/client.ts'
import { systemSource } from '../domain/actor.ts'
import type { DeploymentSpec } from '../domain/spec.ts'
import type { EventLog } from '../events/event-log.ts'
import { appendOutbox } from '../events/outbox.ts'
import { billingEvent } from './crediting.ts'
import { balanceOf, ensureHeld, heldFor, type Leg, lockAccount, postJournal } from './ledger.ts'
import { basisPoints, percentToBps } from './money.ts'
import { expireOrders } from './orders.ts'
import { intervalMicroUsd } from './pricing.ts'

// The metering pass, run periodically when payments are required. It is level-triggered like the
// reconciler: each pass looks at what is, so a pass missed (a crash, a restart) is made up by the
// next one, and a charge carries a dedupe key so no interval is ever charged twice.
//
// - A deployment is charged per whole interval it was `running` (which it only is after its
//   stability window). A partial interval, or time unhealthy, stopped or failed, is not charged.
// - After each charge the hold is topped up from the balance for the next interval. When that is
//   no longer possible the grace period starts; at its end the deployment is stopped with reason
//   `out_of_funds` (its data kept). A top-up ends the grace period, or restarts what was stopped.
// - A deployment that is not running and not about to (stopped, failed, deleted) gets its hold back.
//
// What a pass does is berth's own doing: the audit log and the events name `system:billing`.

const BILLING = systemSource('billing')

export interface BillingDeps {
  database: Database
  store: DeploymentStore
  events: EventLog
  config: Pick<Config, 'payments' | 'pricing'>
  now?: () => Date
  log?: { warn(obj: unknown, msg: string): void }
  payableLegs?: PayableLegs
}

/**
 * Shares what a charged interval pays the compute (the charge less the commission) among those
 * who provided it: the fleet's node operators (fleet/earnings.ts). Null: nobody in particular, and
 * it stays on the platform operator's `operator_payable` book.
 */
export type PayableLegs = (
  tx: Tx,
  deploymentId: string,
  from: Date,
  to: Date,
  payable: bigint,
) => Promise<Leg[] | null>

interface BilledRow {
  id: string
  owner_id: string
  spec: DeploymentSpec
  running_since: Date | string
  billed_through: Date | string | null
  funds_exhausted_at: Date | string | null
  low_balance_warned: boolean
}

/** Running deployments with billing state (or just one of them). */
function billedRows(db: Db | Tx, id?: string): Promise<BilledRow[]> {
  return queryRows<BilledRow>(
    db,
    sql`select d.id, d.owner_id, d.spec, d.running_since, b.billed_through, b.funds_exhausted_at, b.low_balance_warned
          from deployments d join deployment_billing b on b.deployment_id = d.id
         where d.status = 'running' and d.desired_state = 'running' and d.running_since is not null
           ${id ? sql`and d.id = ${id}` : sql``}`,
  )
}

export function createBilling(deps: BillingDeps) {
  const { database, store, events, config } = deps
  const now = deps.now ?? (() => new Date())
  const intervalMs = config.pricing.billingIntervalSeconds * 1000
  const commissionBps = percentToBps(config.payments.commissionPercent)

  /** One metering pass over every deployment; returns what it did, for tests and logs. */
  async function pass(): Promise<{ charged: number; stopped: number; resumed: number; released: number }> {
    const at = now()
    await expireOrders(database, at)
    const running = await billedRows(database.db)
    let charged = 0
    let stopped = 0
    for (const row of running) {
      const result = await meter(row, at)
      charged += result.charged
      if (result.stop) {
        stopped++
        await store.requestIntent(row.owner_id, row.id, 'stop', {
          source: BILLING,
          reason: 'out_of_funds',
          message: `stopped: out of funds after the ${config.payments.gracePeriodSeconds}s grace period; a top-up starts it again`,
        })
      }
      for (const event of result.events) await events.note(row.owner_id, row.id, BILLING.actor, event)
    }
    return { charged, stopped, resumed: await resumeFunded(), released: await releaseIdleHolds() }
  }

  async function meter(listed: BilledRow, at: Date) {
    const cost = intervalMicroUsd(listed.spec, config.pricing)
    const events: Array<{ type: string; message: string; data?: unknown }> = []
    return database.db.transaction(async (tx) => {
      await lockAccount(tx, listed.owner_id)
      // Read again under the lock: another process's pass may have just metered this deployment.
      const [row] = await billedRows(tx, listed.id)
      if (!row) return { charged: 0, stop: false, events }
      const runningSince = new Date(row.running_since).getTime()
      const billedThrough = row.billed_through ? new Date(row.billed_through).getTime() : 0
      // A new billable stretch starts when the deployment (re)entered `running`.
      let from = Math.max(runningSince, billedThrough)
      let charged = 0
      while (at.getTime() - from >= intervalMs) {
        if (await charge(tx, row, cost, new Date(from))) charged++
        from += intervalMs
      }
      await tx.execute(
        sql`update deployment_billing set billed_through = ${new Date(from)}, updated_at = ${at} where deployment_id = ${row.id}`,
      )
      const { covered } = await ensureHeld(tx, {
        accountId: row.owner_id,
        deploymentId: row.id,
        need: cost,
        memo: `hold for the next interval of deployment ${row.id}`,
      })
      const { available, held } = await balanceOf(tx, row.owner_id)
      const low = available + held < BigInt(config.payments.lowBalanceWarningMicroUsd)
      if (low && !row.low_balance_warned) {
        events.push({
          type: 'low_balance',
          message: `balance is low: ${available} micro-USD available, ${held} held`,
        })
        await billingEvent(tx, row.owner_id, row.id, 'low_balance', events.at(-1)!.message)
        await appendOutbox(tx, [
          {
            ownerId: row.owner_id,
            type: 'balance.low',
            deploymentId: row.id,
            payload: {
              availableMicroUsd: available.toString(),
              heldMicroUsd: held.toString(),
              thresholdMicroUsd: String(config.payments.lowBalanceWarningMicroUsd),
              deploymentId: row.id,
            },
          },
        ])
      }
      const exhaustedAt = row.funds_exhausted_at ? new Date(row.funds_exhausted_at) : null
      let stop = false
      let newExhaustedAt: Date | null = null
      if (!covered) {
        newExhaustedAt = exhaustedAt ?? at
        const graceEnds = new Date(newExhaustedAt.getTime() + config.payments.gracePeriodSeconds * 1000)
        if (!exhaustedAt) {
          const message = `balance exhausted: the next interval costs ${cost} micro-USD; stopping at ${graceEnds.toISOString()} unless topped up`
          events.push({ type: 'funds_exhausted', message, data: { graceEndsAt: graceEnds.toISOString() } })
          await billingEvent(tx, row.owner_id, row.id, 'funds_exhausted', message)
          await appendOutbox(tx, [
            {
              ownerId: row.owner_id,
              type: 'funds.exhausted',
              deploymentId: row.id,
              payload: {
                deploymentId: row.id,
                intervalCostMicroUsd: cost.toString(),
                graceEndsAt: graceEnds.toISOString(),
              },
            },
          ])
        }
        stop = at.getTime() >= graceEnds.getTime()
      } else if (exhaustedAt) {
        events.push({ type: 'funds_restored', message: 'balance topped up: the grace period is over' })
      }
      await tx.execute(
        sql`update deployment_billing
               set funds_exhausted_at = ${stop ? null : newExhaustedAt}, low_balance_warned = ${low}
             where deployment_id = ${row.id}`,
      )
      if (charged > 0) {
        await appendAudit(tx, [
          {
            ownerId: row.owner_id,
            source: BILLING,
            action: 'billing.charge',
            target: `deployment:${row.id}`,
            detail: {
              intervals: charged,
              microUsd: (cost * BigInt(charged)).toString(),
              through: new Date(from).toISOString(),
            },
          },
        ])
      }
      return { charged, stop, events }
    })
  }

  /**
   * Charges one interval from the deployment's hold, then from the balance (which may go below zero
   * during grace); false when that interval was already charged.
   */
  async function charge(tx: Tx, row: BilledRow, cost: bigint, intervalStart: Date): Promise<boolean> {
    const held = await heldFor(tx, row.id)
    const fromHeld = held >= cost ? cost : held > 0n ? held : 0n
    const commission = basisPoints(cost, commissionBps)
    const intervalEnd = new Date(intervalStart.getTime() + intervalMs)
    const payable = cost - commission
    const shared = await deps.payableLegs?.(tx, row.id, intervalStart, intervalEnd, payable)
    const journal = await postJournal(tx, {
      cause: 'charge',
      memo: `${config.pricing.billingIntervalSeconds}s of deployment ${row.id} from ${intervalStart.toISOString()}`,
      accountId: row.owner_id,
      deploymentId: row.id,
      dedupeKey: `charge:${row.id}:${intervalStart.toISOString()}`,
      legs: [
        { book: 'held', accountId: row.owner_id, deploymentId: row.id, amount: -fromHeld },
        { book: 'available', accountId: row.owner_id, amount: -(cost - fromHeld) },
        { book: 'revenue', amount: commission },
        ...(shared ?? [{ book: 'operator_payable' as const, amount: payable }]),
      ],
    })
    return journal !== null
  }

  /** Deployments stopped for lack of funds start again once the balance covers an interval. */
  async function resumeFunded(): Promise<number> {
    const paused = await queryRows<{ id: string; owner_id: string; spec: DeploymentSpec }>(
      database.db,
      sql`select id, owner_id, spec from deployments
           where desired_state = 'stopped' and stop_reason = 'out_of_funds'`,
    )
    let resumed = 0
    for (const row of paused) {
      const { available } = await balanceOf(database.db, row.owner_id)
      if (available < intervalMicroUsd(row.spec, config.pricing)) continue
      await store.requestIntent(row.owner_id, row.id, 'start', {
        source: BILLING,
        message: 'balance topped up: starting again',
      })
      resumed++
    }
    return resumed
  }

  /** Gives back what is held for deployments that are not running and not starting. */
  async function releaseIdleHolds(): Promise<number> {
    const idle = await queryRows<{ deployment_id: string; account_id: string }>(
      database.db,
      sql`select p.deployment_id, p.account_id
            from ledger_postings p join deployments d on d.id = p.deployment_id
           where p.book = 'held' and d.status in ('stopped', 'failed', 'deleted')
           group by p.deployment_id, p.account_id having sum(p.amount_micro_usd) > 0`,
    )
    for (const { deployment_id: deploymentId, account_id: accountId } of idle) {
      await database.db.transaction(async (tx) => {
        await lockAccount(tx, accountId)
        // Re-checked under the lock: the reconciler may have started it again meanwhile.
        const [still] = await queryRows<{ status: string }>(
          tx,
          sql`select status from deployments where id = ${deploymentId} and status in ('stopped', 'failed', 'deleted')`,
        )
        if (!still) return
        const held = await heldFor(tx, deploymentId)
        if (held <= 0n) return
        await postJournal(tx, {
          cause: 'release',
          memo: `deployment ${deploymentId} is ${still.status}: its hold is released`,
          accountId,
          deploymentId,
          legs: [
            { book: 'held', accountId, deploymentId, amount: -held },
            { book: 'available', accountId, amount: held },
          ],
        })
        await appendAudit(tx, [
          {
            ownerId: accountId,
            source: BILLING,
            action: 'billing.release',
            target: `deployment:${deploymentId}`,
            detail: { microUsd: held.toString(), status: still.status },
          },
        ])
      })
    }
    return idle.length
  }

  let timer: NodeJS.Timeout | undefined
  let running: Promise<unknown> | undefined
  return {
    pass,
    start(everyMs = Math.min(intervalMs, 5000)) {
      const loop = () => {
        running = pass()
          .catch((error) => deps.log?.warn({ err: error }, 'billing pass failed; the next pass retries'))
          .finally(() => {
            timer = setTimeout(loop, everyMs)
          })
      }
      timer = setTimeout(loop, everyMs)
    },
    async stop() {
      clearTimeout(timer)
      await running
      clearTimeout(timer)
    },
  }
}

export type Billing = ReturnType<typeof createBilling>
