import type { EventBus } from './bus.ts'
import type { EventLog, EventRow } from './event-log.ts'

const PAGE = 500

/**
 * Yields a deployment's events after `afterSeq`, then each new one as it is committed, until the
 * signal aborts. The bus only says "look again"; the database is read every time, so a missed
 * notification costs latency (the `recheckMs` backstop), never an event.
 */
export async function* followEventLog(
  events: EventLog,
  bus: EventBus,
  deploymentId: string,
  afterSeq: number,
  signal: AbortSignal,
  recheckMs = 5000,
): AsyncGenerator<EventRow> {
  let last = afterSeq
  let changed = true
  let notify: (() => void) | undefined
  const unsubscribe = bus.onChanged(deploymentId, () => {
    changed = true
    notify?.()
  })
  const onAbort = () => notify?.()
  signal.addEventListener('abort', onAbort)
  try {
    while (!signal.aborted) {
      if (!changed) {
        await new Promise<void>((resolve) => {
          notify = resolve
          const timer = setTimeout(resolve, recheckMs)
          timer.unref()
        })
        notify = undefined
      }
      changed = false
      for (;;) {
        const page = await events.list(deploymentId, last, PAGE)
        for (const event of page) {
          last = event.seq
          yield event
        }
        if (page.length < PAGE) break
      }
    }
  } finally {
    unsubscribe()
    signal.removeEventListener('abort', onAbort)
  }
}
