import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { applyHeartbeat, lostAt, type UptimeSession, uptimeBasisPoints } from './uptime.ts'

const t = (minutes: number) => new Date(Date.UTC(2026, 10, 1) + minutes * 60_000)
const GAP = 1800

describe('uptime sessions', () => {
  it('extends the session up to the gap, and opens a new one past it, closing the old where it was last seen', () => {
    const first = applyHeartbeat(null, t(0), GAP)
    assert.deepEqual(first, { kind: 'open', session: { startedAt: t(0), lastSeenAt: t(0) }, closed: null })
    const later = applyHeartbeat(first.session, t(30), GAP)
    assert.deepEqual(later, { kind: 'extend', session: { startedAt: t(0), lastSeenAt: t(30) } })
    // 30 minutes and one second of silence: a new session.
    const after = applyHeartbeat(later.session, new Date(t(60).getTime() + 1000), GAP)
    assert.equal(after.kind, 'open')
    assert.deepEqual(after.kind === 'open' && after.closed, { startedAt: t(0), lastSeenAt: t(30) })
  })

  it('does not move the last heartbeat back for one that arrives out of order', () => {
    const current: UptimeSession = { startedAt: t(0), lastSeenAt: t(10) }
    assert.deepEqual(applyHeartbeat(current, t(9), GAP).session, current)
  })

  it('counts the share of a window covered, once for overlaps, in whole basis points', () => {
    // A day: up 00:00–06:00 and 12:00–18:00, with an overlapping duplicate of part of the second.
    const day = 24 * 60
    const sessions = [
      { startedAt: t(0), lastSeenAt: t(6 * 60) },
      { startedAt: t(12 * 60), lastSeenAt: t(18 * 60) },
      { startedAt: t(15 * 60), lastSeenAt: t(17 * 60) },
    ]
    assert.equal(uptimeBasisPoints(sessions, t(0), t(day)), 5000)
    // Only the part inside the window counts: 03:00–09:00 holds three hours of the first session.
    assert.equal(uptimeBasisPoints(sessions, t(3 * 60), t(9 * 60)), 5000)
    // 1 minute of 7 days: 0.0099…% rounds down to 0 basis points.
    assert.equal(uptimeBasisPoints([{ startedAt: t(0), lastSeenAt: t(1) }], t(0), t(7 * day)), 0)
    assert.equal(uptimeBasisPoints([], t(0), t(day)), 0)
  })

  it('declares a node lost after three intervals and the grace, counted from the restart when later', () => {
    const rule = { heartbeatSeconds: 10, lossGraceSeconds: 5 }
    assert.deepEqual(lostAt(t(0), t(-60), rule), new Date(t(0).getTime() + 35_000))
    // The control plane was down and started after the node's last heartbeat: a full budget again.
    assert.deepEqual(lostAt(t(0), t(5), rule), new Date(t(5).getTime() + 35_000))
  })
})
