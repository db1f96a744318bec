import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { backoffDelayMs } from './backoff.ts'

const options = { baseMs: 100, maxMs: 10_000 }
const low = () => 0
const high = () => 1

describe('backoffDelayMs', () => {
  it('stays within [half, full] of base·2^attempt for random 0 and 1', () => {
    for (let attempt = 0; attempt <= 6; attempt++) {
      const exponential = 100 * 2 ** attempt
      assert.equal(backoffDelayMs(attempt, options, low), exponential / 2, `attempt ${attempt}, random 0`)
      assert.equal(backoffDelayMs(attempt, options, high), exponential, `attempt ${attempt}, random 1`)
      for (const r of [0.1, 0.5, 0.9]) {
        const delay = backoffDelayMs(attempt, options, () => r)
        assert.ok(
          delay >= exponential / 2 && delay <= exponential,
          `attempt ${attempt}, random ${r}: ${delay}`,
        )
      }
    }
  })

  it('grows with the attempt number', () => {
    let previous = -1
    for (let attempt = 0; attempt <= 6; attempt++) {
      const delay = backoffDelayMs(attempt, options, high)
      assert.ok(delay > previous, `attempt ${attempt}: ${delay} should exceed ${previous}`)
      // Below the cap, the next attempt's floor is this attempt's ceiling.
      if (attempt < 6) assert.equal(backoffDelayMs(attempt + 1, options, low), delay)
      previous = delay
    }
  })

  it('is capped at maxMs, and its floor at half of it, however many attempts', () => {
    for (const attempt of [7, 8, 20, 100, 1000, 1e6]) {
      assert.equal(backoffDelayMs(attempt, options, high), 10_000, `attempt ${attempt}`)
      assert.equal(backoffDelayMs(attempt, options, low), 5_000, `attempt ${attempt}`)
    }
    assert.ok(Number.isFinite(backoffDelayMs(Number.MAX_SAFE_INTEGER, options, high)))
  })

  it('treats a negative attempt as the first', () => {
    assert.equal(backoffDelayMs(-3, options, high), 100)
    assert.equal(backoffDelayMs(-3, options, low), 50)
  })

  it('spreads retries: random values give different delays within the bounds', () => {
    const seen = new Set<number>()
    for (let i = 0; i <= 10; i++) seen.add(backoffDelayMs(4, options, () => i / 10))
    assert.ok(seen.size > 5, `only ${seen.size} distinct delays`)
    for (const delay of seen) assert.ok(delay >= 800 && delay <= 1600, String(delay))
  })

  it('returns whole milliseconds', () => {
    const delay = backoffDelayMs(0, { baseMs: 3, maxMs: 100 }, () => 0.37)
    assert.ok(Number.isInteger(delay), String(delay))
  })
})
