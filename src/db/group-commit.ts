// Group commit: items that arrive while earlier ones are being written go to the database
// together, in one transaction. Under load most of the cost of a small write is its round trip
// and its commit, not its rows. A lone item still goes out on the next turn of the event loop.

export interface GroupCommitOptions {
  /** At most this many items per batch. */
  maxBatch: number
  /** Batches in flight at once: enough to keep the database busy while the next one gathers. */
  maxInFlight: number
}

interface Waiting<I, O> {
  item: I
  resolve: (result: O) => void
  reject: (error: unknown) => void
}

/**
 * `writeBatch` writes the items and answers each, in order. When it throws, every item of the
 * batch is rejected with that error (nothing of the batch was committed).
 */
export function createGroupCommit<I, O>(
  writeBatch: (items: I[]) => Promise<O[]>,
  options: GroupCommitOptions,
): (item: I) => Promise<O> {
  const queue: Array<Waiting<I, O>> = []
  let inFlight = 0
  let scheduled = false

  const schedule = () => {
    if (scheduled || queue.length === 0 || inFlight >= options.maxInFlight) return
    scheduled = true
    // The next turn, not now: the items of this turn (concurrent requests) join the batch.
    setImmediate(flush)
  }

  const flush = () => {
    scheduled = false
    const batch = queue.splice(0, options.maxBatch)
    if (batch.length === 0) return
    inFlight++
    writeBatch(batch.map((w) => w.item))
      .then(
        (results) => {
          for (const [i, w] of batch.entries()) w.resolve(results[i]!)
        },
        (error: unknown) => {
          for (const w of batch) w.reject(error)
        },
      )
      .finally(() => {
        inFlight--
        schedule()
      })
    schedule()
  }

  return (item) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ item, resolve, reject })
      schedule()
    })
}
