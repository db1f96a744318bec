import type { Db, Tx } from '../db/client.ts'
import { numberedSql, queryRows } from '../db/client.ts'
import { type UptimeSession, uptimeBasisPoints } from '../domain/uptime.ts'
import type { Leg } from '../payments/ledger.ts'

// What node operators earn. The part of a fleet deployment's charge that is not the platform's
// commission is shared equally among its replicas (the first replica takes the remainder of the
// division, so the shares sum to the whole), and each share goes to the operator of the node that
// held the replica through most of the charged interval (from the placements' spans, so a charge
// made late, after a billing outage, still pays the nodes that did the work): a leg on that
// operator's `operator_payable` book, naming the node. A node whose uptime over the charged interval was below
// `fleet.minUptimePercent` earns nothing for it: its share goes to the platform's revenue, on a
// leg that still names the node so its operator sees what was forfeited. The tenant pays the same
// either way: the deployment was running for the whole interval, or it would not be charged.
//
// Uptime over an interval counts a node up from each session's start until one heartbeat interval
// after its last heartbeat in it (a node that has just sent its heartbeat has promised the next one),
// so a healthy node is at 100% for the interval it is charged for right after its end.

interface Span {
  replica: number
  node_id: string
  operator_id: string
  /** Seconds of the interval this node held the replica, all its spans together. */
  held: number
}

/**
 * Each replica's holder over the interval: the node that held it longest in all (a replica that
 * moved during the interval is one share, not two), in replica order; ties go to the lower node id.
 */
function holdersOf(spans: Span[]): Span[] {
  const best = new Map<number, Span>()
  for (const span of spans) {
    const current = best.get(span.replica)
    const longer =
      !current || span.held > current.held || (span.held === current.held && span.node_id < current.node_id)
    if (longer) best.set(span.replica, span)
  }
  return [...best.values()].sort((a, b) => a.replica - b.replica)
}

export function createEarnings(db: Db, settings: { minUptimePercent: number; heartbeatSeconds: number }) {
  const minBasisPoints = Math.round(settings.minUptimePercent * 100)
  const creditMs = settings.heartbeatSeconds * 1000

  const uptimeOver = async (tx: Tx, nodeId: string, from: Date, to: Date): Promise<number> => {
    const rows = await queryRows<{ started_at: Date | string; last_seen_at: Date | string }>(
      tx,
      numberedSql(
        `select started_at, last_seen_at from node_uptime_sessions
         where node_id = $1 and started_at < $3 and last_seen_at > $2`,
        [nodeId, new Date(from.getTime() - creditMs), to],
      ),
    )
    const sessions: UptimeSession[] = rows.map((row) => ({
      startedAt: new Date(row.started_at),
      lastSeenAt: new Date(new Date(row.last_seen_at).getTime() + creditMs),
    }))
    return uptimeBasisPoints(sessions, from, to)
  }

  return {
    /**
     * The legs sharing `payable` of one charged interval among the deployment's node operators;
     * null when the deployment has no replica on the fleet (the payable then stays unattributed).
     */
    async payableLegs(
      tx: Tx,
      deploymentId: string,
      from: Date,
      to: Date,
      payable: bigint,
    ): Promise<Leg[] | null> {
      const spans = await queryRows<Span>(
        tx,
        numberedSql(
          `select s.replica, s.node_id, n.operator_id,
             sum(extract(epoch from least(coalesce(s.ended_at, $3), $3) - greatest(s.started_at, $2)))::float8 as held
           from fleet_placement_spans s join fleet_nodes n on n.id = s.node_id
           where s.deployment_id = $1 and s.started_at < $3 and (s.ended_at is null or s.ended_at > $2)
           group by s.replica, s.node_id, n.operator_id`,
          [deploymentId, from, to],
        ),
      )
      const shares = holdersOf(spans)
      if (shares.length === 0) return null
      const each = payable / BigInt(shares.length)
      const remainder = payable - each * BigInt(shares.length)
      const legs: Leg[] = []
      for (const [index, share] of shares.entries()) {
        const amount = each + (index === 0 ? remainder : 0n)
        const earned = (await uptimeOver(tx, share.node_id, from, to)) >= minBasisPoints
        legs.push(
          earned
            ? {
                book: 'operator_payable',
                accountId: share.operator_id,
                nodeId: share.node_id,
                deploymentId,
                amount,
              }
            : { book: 'revenue', nodeId: share.node_id, deploymentId, amount },
        )
      }
      return legs
    },

    /** What a node operator has earned, in all and per node, and what its nodes forfeited. */
    async of(operatorId: string) {
      const [total] = await queryRows<{ payable: string | null }>(
        db,
        numberedSql(
          `select sum(amount_micro_usd)::text as payable from ledger_postings
           where book = 'operator_payable' and account_id = $1`,
          [operatorId],
        ),
      )
      const nodes = await queryRows<{
        id: string
        name: string
        earned: string | null
        forfeited: string | null
        intervals_earned: number
        intervals_forfeited: number
      }>(
        db,
        numberedSql(
          `select n.id, n.name,
             sum(p.amount_micro_usd) filter (where p.book = 'operator_payable')::text as earned,
             sum(p.amount_micro_usd) filter (where p.book = 'revenue')::text as forfeited,
             count(distinct p.journal_id) filter (where p.book = 'operator_payable')::int as intervals_earned,
             count(distinct p.journal_id) filter (where p.book = 'revenue')::int as intervals_forfeited
           from fleet_nodes n left join ledger_postings p on p.node_id = n.id
           where n.operator_id = $1
           group by n.id, n.name order by n.name, n.id`,
          [operatorId],
        ),
      )
      return {
        payableMicroUsd: total?.payable ?? '0',
        nodes: nodes.map((n) => ({
          id: n.id,
          name: n.name,
          earnedMicroUsd: n.earned ?? '0',
          forfeitedMicroUsd: n.forfeited ?? '0',
          intervalsEarned: n.intervals_earned,
          intervalsForfeited: n.intervals_forfeited,
        })),
      }
    },
  }
}

export type Earnings = ReturnType<typeof createEarnings>
