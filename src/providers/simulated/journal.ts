import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import type { LogLine, ObservedInstance } from '../provider.ts'

// The simulated provider's state: one append-only journal file under its state dir, replayed into
// memory. Appending to an open file costs a few microseconds, where creating a file or folder per
// instance costs about a millisecond on these disks. The journal is the truth: a crashed control
// plane finds its instances there exactly as it would find containers, and two processes sharing
// the state dir (two replicas of the control plane) each read what the other appended. Each append
// is one write(2) in append mode, so concurrent appends land whole, one after the other.
//
// It is never compacted: it grows by a few hundred bytes per apply, stop, restart or delete,
// which suits the demos and load tests the simulated provider exists for.

export interface SimulatedInstance extends Omit<ObservedInstance, 'startedAt'> {
  startedAt?: string
  restartGeneration: number
  unhealthy: boolean
}

export type JournalRecord =
  | { op: 'put'; instance: SimulatedInstance }
  | { op: 'drop'; deploymentId: string; instanceId: string }
  | { op: 'remove'; deploymentId: string }
  | { op: 'log'; deploymentId: string; line: { at: string; stream: LogLine['stream']; text: string } }

export const JOURNAL_FILE = 'journal.jsonl'

/** Instances by deployment, then by instance id. */
export type InstanceTable = Map<string, Map<string, SimulatedInstance>>

/** Applies one record to the table; applying a record twice leaves the table as once. */
function applyRecord(table: InstanceTable, record: JournalRecord): void {
  if (record.op === 'put') {
    const { deploymentId, instanceId } = record.instance
    const instances = table.get(deploymentId) ?? new Map<string, SimulatedInstance>()
    table.set(deploymentId, instances)
    instances.set(instanceId, record.instance)
  } else if (record.op === 'drop') {
    table.get(record.deploymentId)?.delete(record.instanceId)
  } else if (record.op === 'remove') {
    table.delete(record.deploymentId)
  }
}

/** Parses complete lines; a line that is not a record (a torn or foreign write) is skipped. */
function parseRecords(text: string): JournalRecord[] {
  const records: JournalRecord[] = []
  for (const line of text.split('\n')) {
    if (!line) continue
    try {
      records.push(JSON.parse(line) as JournalRecord)
    } catch {
      // Skipped: see above.
    }
  }
  return records
}

export interface Journal {
  /** Appends records in one write, then brings the table up to date (with others' appends too). */
  append(records: JournalRecord[]): void
  /** The instances now, after reading whatever was appended since the last look. */
  table(): InstanceTable
  /** Every log record of one deployment, oldest first (read from the file: logs are rarely read). */
  logs(deploymentId: string): LogLine[]
  close(): void
}

export function openJournal(stateDir: string): Journal {
  mkdirSync(stateDir, { recursive: true })
  const path = join(stateDir, JOURNAL_FILE)
  const fd = openSync(path, 'a+')
  const table: InstanceTable = new Map()
  let offset = 0

  const catchUp = () => {
    const size = fstatSync(fd).size
    if (size <= offset) return
    const bytes = Buffer.alloc(size - offset)
    readSync(fd, bytes, 0, bytes.length, offset)
    // Only whole lines: another process may be between the bytes of an append we raced.
    const end = bytes.lastIndexOf(0x0a)
    if (end < 0) return
    for (const record of parseRecords(bytes.subarray(0, end).toString('utf8'))) applyRecord(table, record)
    offset += end + 1
  }

  return {
    append(records) {
      if (records.length === 0) return
      writeSync(fd, records.map((r) => `${JSON.stringify(r)}\n`).join(''))
      catchUp()
    },
    table() {
      catchUp()
      return table
    },
    logs(deploymentId) {
      const lines: LogLine[] = []
      for (const record of parseRecords(readFileSync(path, 'utf8'))) {
        if (record.op === 'remove' && record.deploymentId === deploymentId) lines.length = 0
        if (record.op === 'log' && record.deploymentId === deploymentId) {
          lines.push({ at: new Date(record.line.at), stream: record.line.stream, text: record.line.text })
        }
      }
      return lines
    },
    close: () => closeSync(fd),
  }
}

/** The instances recorded in a state dir's journal, by deployment (for tests and inspection). */
export function readInstanceTable(stateDir: string): InstanceTable {
  const table: InstanceTable = new Map()
  let text = ''
  try {
    text = readFileSync(join(stateDir, JOURNAL_FILE), 'utf8')
  } catch {
    return table
  }
  for (const record of parseRecords(text)) applyRecord(table, record)
  return table
}
