import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  assertTransition,
  canTransition,
  isSettled,
  type ProgressStage,
  progressStages,
  type Status,
  stagePercent,
  statuses,
  TransitionRefusedError,
} from './lifecycle.ts'

// The expectation is written out here independently of the table in lifecycle.ts,
// so that an edit to the state machine has to be made twice, on purpose.
const allStatuses = [
  'pending',
  'awaiting_payment',
  'scheduled',
  'deploying',
  'starting',
  'running',
  'unhealthy',
  'stopping',
  'stopped',
  'failed',
  'deleting',
  'deleted',
] as const satisfies readonly Status[]

const allowed: Record<Status, readonly Status[]> = {
  pending: ['awaiting_payment', 'scheduled', 'stopping', 'deleting', 'failed'],
  // Paid for, but the provider has no room: the start waits in pending.
  awaiting_payment: ['scheduled', 'pending', 'stopping', 'deleting', 'failed'],
  scheduled: ['deploying', 'stopping', 'deleting', 'failed'],
  deploying: ['starting', 'stopping', 'deleting', 'failed'],
  starting: ['running', 'unhealthy', 'deploying', 'stopping', 'deleting', 'failed'],
  running: ['unhealthy', 'starting', 'deploying', 'stopping', 'deleting', 'failed'],
  unhealthy: ['running', 'starting', 'deploying', 'stopping', 'deleting', 'failed'],
  stopping: ['stopped', 'deleting', 'failed'],
  stopped: ['scheduled', 'awaiting_payment', 'pending', 'deleting'],
  failed: ['scheduled', 'awaiting_payment', 'pending', 'deleting'],
  deleting: ['deleted'],
  deleted: [],
}

describe('lifecycle state machine', () => {
  it('has exactly the twelve statuses of the lifecycle', () => {
    assert.deepEqual([...statuses].sort(), [...allStatuses].sort())
  })

  it('canTransition matches the expected table for every ordered pair', () => {
    const mismatches: string[] = []
    let pairs = 0
    for (const from of allStatuses) {
      for (const to of allStatuses) {
        pairs++
        const expected = allowed[from].includes(to)
        if (canTransition(from, to) !== expected) {
          mismatches.push(`${from} → ${to}: expected ${expected ? 'allowed' : 'refused'}`)
        }
      }
    }
    assert.equal(pairs, 144)
    assert.deepEqual(mismatches, [])
  })

  it('never allows a status to move to itself', () => {
    for (const status of allStatuses) assert.equal(canTransition(status, status), false, status)
  })

  it('deleted is terminal: nothing leaves it', () => {
    for (const to of allStatuses) assert.equal(canTransition('deleted', to), false, to)
  })

  it('assertTransition throws TransitionRefusedError for every refused pair and nothing else', () => {
    for (const from of allStatuses) {
      for (const to of allStatuses) {
        if (allowed[from].includes(to)) {
          assert.doesNotThrow(() => assertTransition(from, to), `${from} → ${to}`)
        } else {
          assert.throws(
            () => assertTransition(from, to),
            (error: unknown) =>
              error instanceof TransitionRefusedError &&
              error.from === from &&
              error.to === to &&
              error.message.includes(from) &&
              error.message.includes(to),
            `${from} → ${to}`,
          )
        }
      }
    }
  })

  it('refuses the shortcuts a careless caller might try', () => {
    assert.throws(() => assertTransition('pending', 'running'), TransitionRefusedError)
    assert.throws(() => assertTransition('deploying', 'running'), TransitionRefusedError)
    assert.throws(() => assertTransition('stopped', 'running'), TransitionRefusedError)
    assert.throws(() => assertTransition('deleted', 'scheduled'), TransitionRefusedError)
    assert.throws(() => assertTransition('deleting', 'stopped'), TransitionRefusedError)
  })
})

describe('progress stages', () => {
  it('have the percents shown to users, in order', () => {
    const expected: Array<[ProgressStage, number]> = [
      ['queued', 0],
      ['scheduling', 10],
      ['pulling', 30],
      ['creating', 50],
      ['starting', 70],
      ['health-checking', 90],
      ['running', 100],
    ]
    assert.deepEqual(
      progressStages.map((stage) => [stage, stagePercent[stage]]),
      expected,
    )
    assert.deepEqual(Object.keys(stagePercent).sort(), expected.map(([stage]) => stage).sort())
  })
})

describe('isSettled', () => {
  it('desired running is settled by running or failed only', () => {
    for (const status of allStatuses) {
      assert.equal(isSettled(status, 'running'), status === 'running' || status === 'failed', status)
    }
  })

  it('desired stopped is settled by stopped or failed only', () => {
    for (const status of allStatuses) {
      assert.equal(isSettled(status, 'stopped'), status === 'stopped' || status === 'failed', status)
    }
  })

  it('desired deleted is settled by deleted only', () => {
    for (const status of allStatuses) {
      assert.equal(isSettled(status, 'deleted'), status === 'deleted', status)
    }
  })
})
