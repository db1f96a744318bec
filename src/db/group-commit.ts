// Group commit: items that arrive while earlier ones are being written go to the database
// together, in one transaction. Under load most of the cost of a small write is its round trip
// and its commit, not its rows. A lone item still goes out on the next turn of the event loop.

export interface GroupCommitOptions {
  /** At most this many items per batch. */
  maxBatch: number
  /** Batches in flight at once: enough to keep the database busy while the next one gathers. */
  maxInFlight: number
  /**
   * Items allowed to wait; past it a new item is refused at once with `busy()` instead of waiting
   * behind a queue it would only lengthen. Absent: no bound.
   */
  maxQueued?: number
  busy?: () => Error
}

interface Waiting<I, O> {
  item: I
  resolve: (result: O) => void
  reject: (error: unknown) => void
}

/**
 * `writeBatch` writes the items and answers each, in order. When a batch fails (nothing of it was
 * committed), its items are written again one at a time, so that one bad item fails alone and the
 * others get their own answers.
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
    write(batch).finally(() => {
      inFlight--
      schedule()
    })
    schedule()
  }

  const write = async (batch: Array<Waiting<I, O>>): Promise<void> => {
    try {
      const results = await writeBatch(batch.map((w) => w.item))
      for (const [i, w] of batch.entries()) w.resolve(results[i]!)
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error)
        return
      }
      // One after another, in order: a batch that failed because the database is down must not
      // turn into as many transactions at once, and two items of one key keep their order.
      for (const w of batch) await write([w])
    }
  }

  return (item) =>
    new Promise<O>((resolve, reject) => {
      if (options.maxQueued !== undefined && queue.length >= options.maxQueued) {
        reject(options.busy?.() ?? new Error('too many items are waiting'))
        return
      }
      queue.push({ item, resolve, reject })
      schedule()
    })
}
