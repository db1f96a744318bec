import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { DeploymentRow } from '../db/deployment-rows.ts'
import { deploymentSpecSchema } from '../domain/spec.ts'
import { decideAfterFailure, type StepFailure } from './decide-failure.ts'

const backoff = { backoffBaseMs: 1000, backoffMaxMs: 60_000, maxRetrySeconds: 1800 }
const NOW = new Date('2030-01-01T12:00:00Z')

function rowOf(fields: Partial<DeploymentRow>): DeploymentRow {
  return {
    status: 'deploying',
    desiredState: 'running',
    attempts: 0,
    retryingSince: null,
    spec: deploymentSpecSchema.parse({ name: 'web', image: 'example/web:1' }),
    ...fields,
  } as DeploymentRow
}

const failed = (kind: StepFailure['kind'], eventType?: string): StepFailure => ({
  kind,
  message: `${kind} failure`,
  ...(eventType ? { eventType } : {}),
})

describe('decideAfterFailure', () => {
  it('fails a deploy the provider refuses for good, recording the event type it names', () => {
    const change = decideAfterFailure(
      rowOf({ restartGeneration: 3 }),
      failed('permanent', 'image_pull_failed'),
      NOW,
      backoff,
      0,
    )
    assert.equal(change.patch?.status, 'failed')
    // The start that failed is used up, or the next look would start it again, and again.
    assert.equal(change.patch?.appliedRestartGeneration, 3)
    assert.equal(change.patch?.stopReason, 'failed')
    assert.equal(change.nextInMs, 0, 'looked at again at once, to be rolled back')
    assert.deepEqual(change.events, [
      { type: 'image_pull_failed', status: 'failed', message: 'permanent failure' },
    ])
  })

  it('retries a permanent failure it cannot fail on (a stop under way), with backoff', () => {
    const change = decideAfterFailure(
      rowOf({ status: 'stopping', desiredState: 'stopped' }),
      failed('permanent'),
      NOW,
      backoff,
      0,
    )
    assert.equal(change.patch?.status, undefined)
    assert.equal(change.patch?.attempts, 1)
    assert.equal(change.nextInMs, 500)
  })

  it('looks again soon at an apply waiting for a service, saying so once and never failing it', () => {
    const first = decideAfterFailure(rowOf({}), failed('waiting'), NOW, backoff, 0)
    assert.deepEqual(first.events, [{ type: 'waiting_for_service', message: 'waiting failure' }])
    assert.equal(first.nextInMs, 1000)
    assert.equal(first.patch?.status, undefined)
    const later = decideAfterFailure(
      rowOf({ attempts: 40, retryingSince: new Date(NOW.getTime() - 3_600_000) }),
      failed('waiting'),
      NOW,
      backoff,
      0,
    )
    assert.deepEqual(later.events, [])
    assert.equal(later.patch?.status, undefined, 'the deadline is the apply’s, not the retry limit')
  })

  it('records an outage once: degraded while up, provider_unavailable otherwise', () => {
    const first = decideAfterFailure(rowOf({ status: 'running' }), failed('unavailable'), NOW, backoff, 0)
    assert.equal(first.events?.[0]?.type, 'degraded')
    const waiting = decideAfterFailure(rowOf({ status: 'pending' }), failed('unavailable'), NOW, backoff, 0)
    assert.equal(waiting.events?.[0]?.type, 'provider_unavailable')
    const again = decideAfterFailure(
      rowOf({ status: 'running', attempts: 1 }),
      failed('unavailable'),
      NOW,
      backoff,
      0,
    )
    assert.deepEqual(again.events, [])
  })

  it('records other errors on the first attempt and every tenth, backing off to the cap', () => {
    const records = [0, 1, 8, 9, 18, 19].map(
      (attempts) =>
        decideAfterFailure(rowOf({ attempts }), failed('internal'), NOW, backoff, 0).events?.length,
    )
    assert.deepEqual(records, [1, 0, 0, 1, 0, 1])
    assert.equal(
      decideAfterFailure(rowOf({ attempts: 30 }), failed('transient'), NOW, backoff, 0.999).nextInMs,
      59_970,
    )
  })

  it('records a cancelled deploy and looks again at once', () => {
    const change = decideAfterFailure(rowOf({}), failed('cancelled'), NOW, backoff, 0.5)
    assert.deepEqual(change, {
      events: [{ type: 'deploy_cancelled', message: 'cancelled failure' }],
      nextInMs: 0,
    })
  })

  it('retries errors that keep coming only up to maxRetrySeconds, then fails with the last reason', () => {
    const first = decideAfterFailure(rowOf({}), failed('transient'), NOW, backoff, 0)
    assert.deepEqual(first.patch?.retryingSince, NOW, 'the run of failures starts')
    const later = new Date(NOW.getTime() + 600_000)
    const going = decideAfterFailure(
      rowOf({ attempts: 5, retryingSince: NOW }),
      failed('internal'),
      later,
      backoff,
      0,
    )
    assert.equal(going.patch?.retryingSince, undefined, 'its start is kept')
    assert.equal(going.patch?.status, undefined)
    const tooLong = new Date(NOW.getTime() + 1801_000)
    const given = decideAfterFailure(
      rowOf({ attempts: 9, retryingSince: NOW }),
      failed('transient'),
      tooLong,
      backoff,
      0,
    )
    assert.equal(given.patch?.status, 'failed')
    assert.match(given.patch?.error ?? '', /still failing after 1801s of retries: transient failure/)
    // An unreachable provider is an outage, waited out however long it lasts.
    const outage = decideAfterFailure(
      rowOf({ status: 'running', attempts: 40, retryingSince: NOW }),
      failed('unavailable'),
      tooLong,
      backoff,
      0,
    )
    assert.equal(outage.patch?.status, undefined)
  })
})
