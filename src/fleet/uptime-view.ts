import { type UptimeSession, uptimeBasisPoints } from '../domain/uptime.ts'

// Uptime percentages as berth shows them. The window of a node younger than the window starts at
// its first heartbeat: a node that joined a day ago and has been up since is at 100%, not at the
// share of a week a day is. But every window is at least an hour long, so a new node proves itself
// for most of an hour before it passes a minimum (a fresh key would otherwise be at 100% with
// its first heartbeat). Until its first heartbeat a node has no uptime (0%).

export const uptimeWindows = { '24h': 86_400, '7d': 7 * 86_400, '30d': 30 * 86_400 } as const
export type UptimeWindow = keyof typeof uptimeWindows

const SHORTEST_WINDOW_MS = 3_600_000

/** Uptime in basis points over each window ending at `now`. */
export function uptimeOf(
  sessions: readonly UptimeSession[],
  firstHeartbeatAt: Date,
  now: Date,
): Record<UptimeWindow, number> {
  const result = {} as Record<UptimeWindow, number>
  for (const [window, seconds] of Object.entries(uptimeWindows) as Array<[UptimeWindow, number]>) {
    const since = Math.min(firstHeartbeatAt.getTime(), now.getTime() - SHORTEST_WINDOW_MS)
    const from = new Date(Math.max(now.getTime() - seconds * 1000, since))
    result[window] = uptimeBasisPoints(sessions, from, now)
  }
  return result
}

/** Basis points as a percentage with two decimals (9950 → 99.5). */
export const percentOf = (basisPoints: number) => basisPoints / 100
