import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DEFAULT_RETRY_DELAYS_SECONDS } from '../config/notifications-schema.ts'
import { attemptsAllowed, retryDelayMs } from './retry-schedule.ts'

describe('retry schedule', () => {
  it('spans about three days by default, in 14 attempts', () => {
    const total = DEFAULT_RETRY_DELAYS_SECONDS.reduce((a, b) => a + b, 0)
    assert.ok(total > 2.9 * 86_400 && total < 3.5 * 86_400, `${total / 86_400} days`)
    assert.equal(attemptsAllowed(DEFAULT_RETRY_DELAYS_SECONDS), 14)
  })

  it('waits the configured delay within a fifth either way, and ends after the last', () => {
    const delays = [5, 60]
    assert.equal(
      retryDelayMs(1, delays, () => 0),
      4000,
    )
    assert.equal(
      retryDelayMs(1, delays, () => 1),
      6000,
    )
    assert.equal(
      retryDelayMs(2, delays, () => 0.5),
      60_000,
    )
    assert.equal(
      retryDelayMs(3, delays, () => 0.5),
      undefined,
    )
  })
})
