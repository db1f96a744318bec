// A fleet node's uptime, from its heartbeats. A heartbeat extends the node's current uptime
// session when it comes at most `gapSeconds` after the one before; a longer silence closes that
// session where it was last seen and opens a new one at the new heartbeat. Uptime over a window
// is the share of the window covered by sessions. A node is lost when it has not been heard from
// for three heartbeat intervals plus a grace period; a control plane that has just started gives
// every node that whole budget again, counted from its own start (it heard nothing while down).

export interface UptimeSession {
  startedAt: Date
  /** The last heartbeat of the session: it is up until then. */
  lastSeenAt: Date
}

export type HeartbeatEffect =
  | { kind: 'extend'; session: UptimeSession }
  | { kind: 'open'; session: UptimeSession; closed: UptimeSession | null }

/** What a heartbeat at `at` does to the node's current session (null: it has none yet). */
export function applyHeartbeat(current: UptimeSession | null, at: Date, gapSeconds: number): HeartbeatEffect {
  if (current && at.getTime() - current.lastSeenAt.getTime() <= gapSeconds * 1000) {
    // A heartbeat older than the last one seen (allowed clock skew) does not move it back.
    const lastSeenAt = at > current.lastSeenAt ? at : current.lastSeenAt
    return { kind: 'extend', session: { startedAt: current.startedAt, lastSeenAt } }
  }
  return { kind: 'open', session: { startedAt: at, lastSeenAt: at }, closed: current }
}

/**
 * The share of [from, to) covered by the sessions, in basis points (10,000 = always up), so that
 * comparisons with a minimum are exact. Overlapping sessions count once.
 */
export function uptimeBasisPoints(sessions: readonly UptimeSession[], from: Date, to: Date): number {
  const windowMs = to.getTime() - from.getTime()
  if (windowMs <= 0) return 0
  const spans = sessions
    .map((s) => [
      Math.max(s.startedAt.getTime(), from.getTime()),
      Math.min(s.lastSeenAt.getTime(), to.getTime()),
    ])
    .filter(([start, end]) => end! > start!)
    .sort((a, b) => a[0]! - b[0]!)
  let covered = 0
  let reach = -Infinity
  for (const [start, end] of spans as Array<[number, number]>) {
    const newFrom = Math.max(start, reach)
    if (end > newFrom) covered += end - newFrom
    reach = Math.max(reach, end)
  }
  return Math.floor((covered * 10_000) / windowMs)
}

export interface LossRule {
  heartbeatSeconds: number
  lossGraceSeconds: number
}

/** How long a node may be silent before it counts as lost. */
export const lossBudgetMs = (rule: LossRule) => (3 * rule.heartbeatSeconds + rule.lossGraceSeconds) * 1000

/** When a node last heard from at `lastSeenAt` counts as lost, given when the control plane started. */
export function lostAt(lastSeenAt: Date, controlPlaneStartedAt: Date, rule: LossRule): Date {
  const budgetMs = lossBudgetMs(rule)
  const since = Math.max(lastSeenAt.getTime(), controlPlaneStartedAt.getTime())
  return new Date(since + budgetMs)
}
