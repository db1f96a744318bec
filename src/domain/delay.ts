/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function abortableDelay(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason)
  if (ms <= 0) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** What `withDeadline` rejects with when the work did not settle in time. */
export class DeadlineError extends Error {
  constructor(ms: number) {
    super(`did not finish within ${ms} ms`)
  }
}

/**
 * The work's own outcome, or a DeadlineError once `ms` pass first. The work is not stopped: a
 * caller that can end it (destroy a stream) does so on the DeadlineError.
 */
export function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(ms)), ms)
  })
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer))
}
