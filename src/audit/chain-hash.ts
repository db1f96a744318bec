import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'
import type { Actor } from '../domain/actor.ts'

// The audit log's hash chain. Each entry's hash covers everything it says and the hash of the
// entry before it (of the same owner), written as RFC 8785 canonical JSON so that the server and
// `berth audit verify` (which recomputes it from what the API returns) hash the same bytes.

/** The previous hash of an owner's first entry. */
export const GENESIS_HASH = '0'.repeat(64)

export interface ChainedEntry {
  owner: string
  seq: number
  /** ISO 8601 with milliseconds, as `Date.toISOString` writes it. */
  at: string
  actor: Actor
  action: string
  target: string
  ip: string | null
  requestId: string | null
  outcome: 'ok' | 'denied'
  detail: Record<string, unknown> | null
  prevHash: string
}

export function entryHash(entry: ChainedEntry): string {
  const { owner, seq, at, actor, action, target, ip, requestId, outcome, detail, prevHash } = entry
  const text = canonicalize({
    owner,
    seq,
    at,
    actor: { type: actor.type, id: actor.id },
    action,
    target,
    ip,
    requestId,
    outcome,
    detail,
    prevHash,
  })
  return createHash('sha256').update(text!).digest('hex')
}

/**
 * What is wrong with one owner's entries, oldest first: an entry whose hash does not match what it
 * says (edited), a gap in the numbers or a broken link (deleted, inserted), fewer entries than
 * the owner's head says (deleted at the end). Empty when the chain holds.
 */
export function chainProblems(
  entries: Array<ChainedEntry & { hash: string }>,
  head?: { seq: number; hash: string },
): string[] {
  const problems: string[] = []
  let previous: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH }
  for (const entry of entries) {
    if (entry.seq !== previous.seq + 1) {
      problems.push(`entries ${previous.seq + 1}…${entry.seq - 1} are missing (deleted?)`)
    } else if (entry.prevHash !== previous.hash) {
      problems.push(`entry ${entry.seq} does not follow entry ${previous.seq} (its previous hash differs)`)
    }
    if (entryHash(entry) !== entry.hash) {
      problems.push(`entry ${entry.seq} was changed after it was written (its hash does not match)`)
    }
    previous = { seq: entry.seq, hash: entry.hash }
  }
  // The head may be older than the last entry (read before newer entries landed), never newer.
  if (head && head.seq > previous.seq) {
    problems.push(`entries ${previous.seq + 1}…${head.seq} are missing at the end (deleted?)`)
  } else if (head && head.seq > 0) {
    const atHead = entries.find((e) => e.seq === head.seq)
    if (atHead && atHead.hash !== head.hash) {
      problems.push(`entry ${head.seq} is not the one the chain's head recorded`)
    }
  }
  return problems
}

/**
 * Whether an entry verified intact earlier (its number and hash) is still in the owner's entries,
 * unchanged. A log whose history was rewritten, hashes and all, passes `chainProblems` but not
 * this: the client remembers what it saw.
 */
export function checkpointProblems(
  entries: Array<{ seq: number; hash: string }>,
  checkpoint: { seq: number; hash: string; at: string },
): string[] {
  const entry = entries.find((e) => e.seq === checkpoint.seq)
  if (!entry) return [`entry ${checkpoint.seq}, verified at ${checkpoint.at}, is gone`]
  if (entry.hash !== checkpoint.hash) {
    return [
      `entry ${checkpoint.seq} is not the one verified at ${checkpoint.at}: the log up to it was rewritten`,
    ]
  }
  return []
}
