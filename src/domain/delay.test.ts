import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DeadlineError, withDeadline } from './delay.ts'

describe('withDeadline', () => {
  it("gives the work's value, or its error, when it settles in time", async () => {
    assert.equal(await withDeadline(Promise.resolve(7), 1000), 7)
    await assert.rejects(withDeadline(Promise.reject(new Error('refused')), 1000), /refused/)
  })

  it('rejects with a DeadlineError naming the time when the work does not settle', async () => {
    const never = new Promise<never>(() => {})
    await assert.rejects(withDeadline(never, 20), (error: unknown) => {
      assert.ok(error instanceof DeadlineError)
      assert.match(error.message, /did not finish within 20 ms/)
      return true
    })
  })
})
