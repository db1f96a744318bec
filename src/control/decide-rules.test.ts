import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  drive,
  healthy,
  instance,
  minutesAgo,
  NOW,
  observedOf,
  rowOf,
  settings,
  unjudged,
  type World,
  withCheck,
} from '../../test/helpers/decide-world.ts'
import type { DeploymentRow } from '../db/deployment-rows.ts'
import { canTransition, desiredStates, type Status, statuses } from '../domain/lifecycle.ts'
import { decide } from './decide.ts'

// decide()'s rules beyond the table: what its writes record, and that no combination of status,
// desired state, counters and world makes it take a move the state machine refuses.

describe('decide: what it records, and what it never does', () => {
  it('records why: the exit, the OOM kill, the restart count, the budget', () => {
    const exited = drive(rowOf({ status: 'running' }), {
      observed: observedOf(instance({ state: 'exited', exitCode: 137, oomKilled: true })),
    }).decision
    assert.ok(exited.kind === 'write')
    assert.equal(exited.change.events?.at(-1)?.type, 'oom_killed')
    assert.match(exited.change.events?.at(-1)?.message ?? '', /out of memory \(limit 256 MB\)/)

    const restarted = drive(
      rowOf({ status: 'unhealthy', restartCount: 1, restartWindowStartedAt: minutesAgo(5) }),
    ).decision
    assert.ok(restarted.kind === 'write')
    assert.equal(restarted.change.events?.at(-1)?.type, 'restarted')
    assert.equal(restarted.change.patch?.restartCount, 2)
    assert.deepEqual(restarted.change.patch?.restartWindowStartedAt, minutesAgo(5))

    const spent = drive(
      rowOf({ status: 'unhealthy', restartCount: 2, restartWindowStartedAt: minutesAgo(5) }),
    ).decision
    assert.ok(spent.kind === 'write')
    assert.equal(spent.change.patch?.stopReason, 'failed')
    assert.match(spent.change.patch?.error ?? '', /restart budget spent/)
  })

  it('starts the restart ladder over after a healthy stretch, and counts the deploy time', () => {
    const settled = drive(
      rowOf({ status: 'running', restartCount: 2, runningSince: minutesAgo(11) }),
    ).decision
    assert.ok(settled.kind === 'write')
    assert.equal(settled.change.patch?.restartCount, 0)
    const recent = drive(rowOf({ status: 'running', restartCount: 2, runningSince: minutesAgo(5) })).decision
    assert.ok(recent.kind === 'write')
    assert.equal(recent.change.patch?.restartCount, undefined)

    const started = drive(
      rowOf({ status: 'starting', deployStartedAt: new Date(NOW.getTime() - 2500) }),
    ).decision
    assert.ok(started.kind === 'write')
    assert.equal(started.deployDurationSeconds, 2.5)
    assert.deepEqual(started.change.patch?.runningSince, NOW)
  })

  it('clears what a start leaves behind, and keeps what an apply found', () => {
    const fromStopped = decide(
      rowOf({ status: 'stopped', stopReason: 'user', error: 'old' }),
      { funding: { admitted: true }, capacity: { admitted: true } },
      NOW,
      settings,
    )
    assert.ok(fromStopped.kind === 'apply')
    // Admitted: no longer waiting for the provider's capacity.
    assert.deepEqual(fromStopped.start.patch, {
      deployStartedAt: NOW,
      stopReason: null,
      error: null,
      restartCount: 1,
      restartWindowStartedAt: NOW,
      waitReason: null,
      queuedAt: null,
    })
    // What the move to `deploying` sets travels with the apply, written with its first write.
    const started = decide(
      rowOf({ status: 'failed', restartGeneration: 2, appliedRestartGeneration: 1, restartCount: 2 }),
      { funding: { admitted: true }, capacity: { admitted: true } },
      NOW,
      settings,
    )
    assert.ok(started.kind === 'apply')
    // A start after a failure counts against the restart budget (here: a new window opens).
    assert.deepEqual(started.start.patch, {
      deployStartedAt: NOW,
      error: null,
      stopReason: null,
      restartCount: 1,
      restartWindowStartedAt: NOW,
      waitReason: null,
      queuedAt: null,
    })
    const endpoints = [{ containerPort: 80, protocol: 'tcp' as const, url: 'http://127.0.0.1:19000' }]
    const applied = drive(rowOf({ status: 'scheduled', restartGeneration: 3 }), {
      applied: { ...healthy, endpoints },
    }).decision
    assert.ok(applied.kind === 'write')
    assert.deepEqual(applied.change.patch?.endpoints, endpoints)
    assert.equal(applied.change.patch?.appliedRestartGeneration, 3)
    assert.equal(applied.change.patch?.status, 'running')
  })

  it('never takes a move the state machine refuses, for any status, desired state and world', () => {
    const worlds: World[] = [
      {},
      { funding: { admitted: false, message: 'no funds', retryInMs: 1000 } },
      { observed: null },
      { observed: unjudged, probeFails: true },
      { observed: observedOf(instance({ state: 'exited', exitCode: 1 })) },
      { applied: unjudged, probeFails: true },
    ]
    const counters: Array<Omit<Partial<DeploymentRow>, 'spec'>> = [
      {},
      { restartGeneration: 1 },
      { restartCount: 2, restartWindowStartedAt: minutesAgo(1), unhealthyStreak: 2 },
    ]
    let refused = 0
    for (const status of statuses) {
      for (const desiredState of desiredStates) {
        for (const fields of counters) {
          for (const world of worlds) {
            const row = rowOf({ status, desiredState, spec: withCheck, ...fields })
            const { decision, start } = drive(row, world)
            if (decision.kind === 'refused') {
              refused++
              assert.equal(canTransition(decision.from, decision.to), false)
              continue
            }
            assert.ok(decision.kind === 'write')
            let at: Status = status
            const path = [
              ...start,
              ...(decision.change.events ?? []).flatMap((e) => (e.status ? [e.status] : [])),
            ]
            for (const next of path) {
              assert.ok(canTransition(at, next), `${status}/${desiredState}: ${at} → ${next}`)
              at = next
            }
            // The row's new status is the last one its events record: none changes unrecorded.
            const written = decision.change.patch?.status
            if (written !== undefined) assert.equal(written, path.at(-1), `${status}/${desiredState}`)
            else assert.equal(path.filter((p) => !start.includes(p)).length, 0)
          }
        }
      }
    }
    // The one combination that cannot happen: a stop asked of a deployment being deleted.
    assert.equal(refused, counters.length * worlds.length)
  })

  it('queues a start the provider has no room for once, keeping its place, and gives the room back at rest', () => {
    const noRoom = {
      admitted: false as const,
      waitReason: 'insufficient_capacity' as const,
      message: 'no room',
      place: 1,
      retryInMs: 2000,
    }
    const first = decide(
      rowOf({ status: 'pending' }),
      { funding: { admitted: true }, capacity: noRoom },
      NOW,
      settings,
    )
    assert.ok(first.kind === 'write')
    assert.equal(first.change.patch?.waitReason, 'insufficient_capacity')
    assert.deepEqual(first.change.patch?.queuedAt, NOW)
    assert.deepEqual(
      first.change.events?.map((e) => [e.type, e.message]),
      [['waiting_for_capacity', 'no room']],
    )
    const queuedAt = minutesAgo(3)
    const again = decide(
      rowOf({ status: 'pending', waitReason: 'insufficient_capacity', queuedAt }),
      { funding: { admitted: true }, capacity: noRoom },
      NOW,
      settings,
    )
    assert.ok(again.kind === 'write')
    assert.deepEqual(again.change.patch?.queuedAt, queuedAt, 'the place in the queue is kept')
    assert.deepEqual(again.change.events, [], 'said once')

    const stopped = decide(
      rowOf({ status: 'stopping', desiredState: 'stopped', holdsCapacity: true }),
      {},
      NOW,
      settings,
    )
    assert.ok(stopped.kind === 'write')
    assert.equal(stopped.change.patch?.holdsCapacity, false)
    // A waiting start that is stopped leaves the queue: started again later, it queues anew.
    const leaves = decide(
      rowOf({ status: 'pending', desiredState: 'stopped', waitReason: 'insufficient_capacity', queuedAt }),
      {},
      NOW,
      settings,
    )
    assert.ok(leaves.kind === 'write')
    assert.equal(leaves.change.patch?.waitReason, null)
    assert.equal(leaves.change.patch?.queuedAt, null)
  })
})
