import { readdirSync, readFileSync } from 'node:fs'

// Where the CPU went during a benchmark run, from /proc: per process group (berth, PostgreSQL,
// the load generator) and the time the host took the vCPUs away (steal). On a shared 2-core VM
// the throughput of one run depends on the neighbours; CPU per deployment does much less, and the
// steal says how disturbed a run was.

const TICKS_PER_SECOND = 100 // USER_HZ on Linux

export interface CpuSnapshot {
  /** CPU seconds by group. */
  groups: Record<string, number>
  /** Seconds the host stole from all vCPUs together. */
  steal: number
}

/** `groupOf(pid, command)` names the group a process counts for, or undefined to leave it out. */
export function cpuSnapshot(groupOf: (pid: number, command: string) => string | undefined): CpuSnapshot {
  const groups: Record<string, number> = {}
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
    } catch {
      continue // exited meanwhile
    }
    // The command is in parentheses and may itself contain spaces or parentheses.
    const command = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
    const group = groupOf(Number(entry), command)
    if (!group) continue
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12]) // utime + stime
    groups[group] = (groups[group] ?? 0) + ticks / TICKS_PER_SECOND
  }
  const total = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/)
  return { groups, steal: Number(total[8]) / TICKS_PER_SECOND }
}

/** Milliseconds of CPU per unit of work, by group, between two snapshots; and the steal. */
export function cpuPer(before: CpuSnapshot, after: CpuSnapshot, units: number): string {
  const parts = Object.keys(after.groups)
    .sort()
    .map((group) => {
      const seconds = (after.groups[group] ?? 0) - (before.groups[group] ?? 0)
      return `${group} ${((seconds * 1000) / units).toFixed(2)} ms`
    })
  return `${parts.join(', ')}; host steal ${(after.steal - before.steal).toFixed(1)} s`
}

/** The groups of a benchmark run: the `berth serve` process, this process (the load generator), PostgreSQL. */
export function benchGroups(
  serverPid: number | undefined,
): (pid: number, command: string) => string | undefined {
  return (pid, command) =>
    pid === serverPid
      ? 'berth'
      : pid === process.pid
        ? 'load generator'
        : command === 'postgres'
          ? 'PostgreSQL'
          : undefined
}
