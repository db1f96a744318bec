import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { invalidInput } from '../domain/errors.ts'

// The embedded database belongs to one process: two opening the same data directory would corrupt
// it (PGlite has no lock of its own across processes). `berth serve`, `migrate` and `keys rotate`
// claim the directory with a pid file first; one left by a process that is gone is taken over.

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists, run by another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export function lockDataDir(dataDir: string): { release(): void } {
  const path = join(dataDir, 'berth.pid')
  for (;;) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' })
      return {
        release: () => {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) rmSync(path, { force: true })
        },
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const holder = Number(readFileSync(path, 'utf8').trim())
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
      throw invalidInput(`another berth process (pid ${holder}) uses ${dataDir}: stop it first`)
    }
    // Left by a process that is gone: take it over (the next write is exclusive again).
    rmSync(path, { force: true })
  }
}
