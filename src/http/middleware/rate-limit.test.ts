import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { TokenBuckets } from './rate-limit.ts'

describe('token buckets', () => {
  it('allows a burst, then one request per refill, and says how long to wait', () => {
    let now = 0
    const buckets = new TokenBuckets({ perMinute: 60, burst: 3 }, () => now)
    assert.deepEqual(
      [1, 2, 3].map(() => buckets.take('a')),
      [0, 0, 0],
    )
    assert.equal(buckets.take('a'), 1, 'one token a second: wait a second')
    assert.equal(buckets.take('b'), 0, 'another key has its own bucket')
    now += 1000
    assert.equal(buckets.take('a'), 0)
    assert.equal(buckets.take('a'), 1)
    now += 60_000
    assert.deepEqual(
      [1, 2, 3, 4].map(() => buckets.take('a')),
      [0, 0, 0, 1],
      'refilled to the burst, no more',
    )
  })

  it('says minutes when the rate is slow', () => {
    const buckets = new TokenBuckets({ perMinute: 1, burst: 1 }, () => 0)
    assert.equal(buckets.take('a'), 0)
    assert.equal(buckets.take('a'), 60)
  })
})
