import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { DeploymentRow } from '../db/deployment-rows.ts'
import { deploymentSpecSchema } from '../domain/spec.ts'
import { decideAfterFailure, type StepFailure } from './decide-failure.ts'

const backoff = { backoffBaseMs: 1000, backoffMaxMs: 60_000 }

function rowOf(fields: Partial<DeploymentRow>): DeploymentRow {
  return {
    status: 'deploying',
    desiredState: 'running',
    attempts: 0,
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
    const change = decideAfterFailure(rowOf({}), failed('permanent', 'image_pull_failed'), backoff, 0)
    assert.equal(change.patch?.status, 'failed')
    assert.equal(change.patch?.stopReason, 'failed')
    assert.equal(change.nextInMs, null)
    assert.deepEqual(change.events, [
      { type: 'image_pull_failed', status: 'failed', message: 'permanent failure' },
    ])
  })

  it('retries a permanent failure it cannot fail on (a stop under way), with backoff', () => {
    const change = decideAfterFailure(
      rowOf({ status: 'stopping', desiredState: 'stopped' }),
      failed('permanent'),
      backoff,
      0,
    )
    assert.equal(change.patch?.status, undefined)
    assert.equal(change.patch?.attempts, 1)
    assert.equal(change.nextInMs, 500)
  })

  it('records an outage once: degraded while up, provider_unavailable otherwise', () => {
    const first = decideAfterFailure(rowOf({ status: 'running' }), failed('unavailable'), backoff, 0)
    assert.equal(first.events?.[0]?.type, 'degraded')
    const waiting = decideAfterFailure(rowOf({ status: 'pending' }), failed('unavailable'), backoff, 0)
    assert.equal(waiting.events?.[0]?.type, 'provider_unavailable')
    const again = decideAfterFailure(
      rowOf({ status: 'running', attempts: 1 }),
      failed('unavailable'),
      backoff,
      0,
    )
    assert.deepEqual(again.events, [])
  })

  it('records other errors on the first attempt and every tenth, backing off to the cap', () => {
    const records = [0, 1, 8, 9, 18, 19].map(
      (attempts) => decideAfterFailure(rowOf({ attempts }), failed('internal'), backoff, 0).events?.length,
    )
    assert.deepEqual(records, [1, 0, 0, 1, 0, 1])
    assert.equal(
      decideAfterFailure(rowOf({ attempts: 30 }), failed('transient'), backoff, 0.999).nextInMs,
      59_970,
    )
  })

  it('records a cancelled deploy and looks again at once', () => {
    const change = decideAfterFailure(rowOf({}), failed('cancelled'), backoff, 0.5)
    assert.deepEqual(change, {
      events: [{ type: 'deploy_cancelled', message: 'cancelled failure' }],
      nextInMs: 0,
    })
  })
})
