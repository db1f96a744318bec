import { addUsage, checkQuota, type QuotaLimits, type QuotaUsage } from './quota-limits.ts'

// Admission against an account's quotas for creates that may arrive at once. Each check counts,
// besides what the database holds, every earlier admitted create that has not been written yet:
// without that, many concurrent creates would each see the same usage and together go over the
// limit.
//
// Creates for one account that arrive while its usage is being read wait, and are then admitted
// together, one after another, against one read: the read's usage plus what was in flight when it
// began plus those admitted before them in the group. So a burst of creates costs one read of the
// account's usage per round trip, not one each (which, one at a time, would cap an account's
// creates at one per read).
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

interface Waiting {
  demand: QuotaUsage
  resolve: (release: Release) => void
  reject: (error: unknown) => void
}

export function createQuotaAdmission(source: QuotaSource) {
  const inFlight = new Map<string, Set<QuotaUsage>>()
  const waiting = new Map<string, Waiting[]>()
  const reading = new Set<string>()

  /** Marks `demand` as admitted and not yet written; the release unmarks it. */
  function reserve(accountId: string, demand: QuotaUsage): Release {
    const pending = inFlight.get(accountId) ?? new Set<QuotaUsage>()
    inFlight.set(accountId, pending)
    const mine = { ...demand }
    pending.add(mine)
    return () => {
      pending.delete(mine)
      if (pending.size === 0 && inFlight.get(accountId) === pending) inFlight.delete(accountId)
    }
  }

  /** Reads the account's usage and admits the waiting creates against it, until none wait. */
  async function admitWaiting(accountId: string): Promise<void> {
    reading.add(accountId)
    try {
      for (let group = waiting.get(accountId); group?.length; group = waiting.get(accountId)) {
        waiting.delete(accountId)
        // Taken before the database is read: an in-flight create that lands during the read is
        // then counted twice (safe), never not at all.
        const reserved = addUsage(...(inFlight.get(accountId) ?? []))
        const read = await Promise.all([source.limitsOf(accountId), source.usageOf(accountId)]).catch(
          (error: unknown) => {
            for (const w of group) w.reject(error)
            return undefined
          },
        )
        if (!read) continue
        const [limits, stored] = read
        let admitted = addUsage(stored, reserved)
        for (const w of group) {
          try {
            checkQuota(limits, admitted, w.demand)
          } catch (refusal) {
            w.reject(refusal)
            continue
          }
          admitted = addUsage(admitted, w.demand)
          w.resolve(reserve(accountId, w.demand))
        }
      }
    } finally {
      reading.delete(accountId)
    }
  }

  function admit(accountId: string, demand: QuotaUsage): Promise<Release> {
    return new Promise((resolve, reject) => {
      const group = waiting.get(accountId) ?? []
      group.push({ demand, resolve, reject })
      waiting.set(accountId, group)
      if (!reading.has(accountId)) void admitWaiting(accountId)
    })
  }

  return { admit }
}

export type QuotaAdmission = ReturnType<typeof createQuotaAdmission>
