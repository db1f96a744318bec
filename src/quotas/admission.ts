import { addUsage, checkQuota, type QuotaLimits, type QuotaUsage } from './quota-limits.ts'

// Admission against an account's quotas for creates that may arrive at once. The check for one
// account runs one at a time in this process, and it counts, besides what the database holds,
// every earlier admitted create that has not been written yet: without that, many concurrent
// creates would each see the same usage and together go over the limit.
//
// The in-flight part is per process: with several berth replicas, creates for one account that
// land on different replicas at the same instant can overshoot by what is in flight on the others
// (bounded by the per-account write rate limit).

export interface QuotaSource {
  limitsOf(accountId: string): Promise<QuotaLimits>
  usageOf(accountId: string): Promise<QuotaUsage>
}

/** Call once the admitted write has landed or failed; the database then counts it, or nothing does. */
export type Release = () => void

export function createQuotaAdmission(source: QuotaSource) {
  const inFlight = new Map<string, Set<QuotaUsage>>()
  const queues = new Map<string, Promise<void>>()

  async function admit(accountId: string, demand: QuotaUsage): Promise<Release> {
    const previous = queues.get(accountId) ?? Promise.resolve()
    let done!: () => void
    const turn = new Promise<void>((resolve) => {
      done = resolve
    })
    const tail = previous.then(() => turn)
    queues.set(accountId, tail)
    try {
      await previous
      // Taken before the database is read: an in-flight create that lands during the read is then
      // counted twice (safe), never not at all.
      const pending = inFlight.get(accountId) ?? new Set<QuotaUsage>()
      const reserved = addUsage(...pending)
      const [limits, stored] = await Promise.all([source.limitsOf(accountId), source.usageOf(accountId)])
      checkQuota(limits, addUsage(stored, reserved), demand)
      const mine = { ...demand }
      pending.add(mine)
      inFlight.set(accountId, pending)
      return () => {
        pending.delete(mine)
        if (pending.size === 0 && inFlight.get(accountId) === pending) inFlight.delete(accountId)
      }
    } finally {
      done()
      if (queues.get(accountId) === tail) queues.delete(accountId)
    }
  }

  return { admit }
}

export type QuotaAdmission = ReturnType<typeof createQuotaAdmission>
