import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { createLogger, startBerth } from '../app.ts'
import { loadConfig } from '../config/load.ts'
import type { Config } from '../config/schema.ts'
import { type Database, openDatabase } from '../db/client.ts'
import { runMigrations } from '../db/migrate.ts'
import { masterKeyPathOf } from '../secrets/master-keys.ts'
import { rotateMasterKey } from '../secrets/rotate.ts'
import { exitCodeOf, exitCodes } from './exit-codes.ts'

// The process entries of `berth serve`, `berth migrate` and `berth keys rotate`: the control plane
// (or its database) is in this process. Loaded only when one of them is asked for, so client commands never load the server.
// They resolve with an exit code: 0 ok, 2 invalid configuration (a bad file, value or provider
// choice), 1 any other failure to start.

export interface EntryOptions {
  configFile?: string
  flags: Record<string, unknown>
}

function configOrExit(options: EntryOptions): Config | number {
  try {
    return loadConfig({ ...(options.configFile ? { file: options.configFile } : {}), flags: options.flags })
  } catch (error) {
    console.error(`error: ${(error as Error).message}`)
    return exitCodeOf(error)
  }
}

export async function serve(options: EntryOptions): Promise<number> {
  const config = configOrExit(options)
  if (typeof config === 'number') return config
  const logger = await createLogger(config, { terminal: process.stdout.isTTY === true })
  // Listen for signals before starting: a supervisor that sees "berth is listening" may signal at
  // once, and a signal arriving before a listener exists would kill the process uncleanly.
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'))
    process.once('SIGINT', () => resolve('SIGINT'))
  })
  let running: Awaited<ReturnType<typeof startBerth>>
  try {
    running = await startBerth(config, logger)
  } catch (error) {
    logger.fatal({ err: error }, `berth could not start: ${(error as Error).message}`)
    logger.flush()
    return exitCodeOf(error)
  }
  const signal = await signalled
  logger.info({ signal }, 'shutting down')
  await running.stop()
  logger.info('stopped')
  return exitCodes.ok
}

/**
 * Runs `work` on the configured database with its migrations applied, answering with an exit
 * code: a failure is printed, never thrown.
 */
async function onDatabase(config: Config, work: (database: Database) => Promise<void>): Promise<number> {
  const database = await openDatabase({
    dataDir: config.dataDir,
    ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
  })
  try {
    await runMigrations(database)
    await work(database)
    return exitCodes.ok
  } catch (error) {
    console.error(`error: ${(error as Error).message}`)
    return exitCodeOf(error)
  } finally {
    await database.close()
  }
}

export async function migrate(options: EntryOptions): Promise<number> {
  const config = configOrExit(options)
  if (typeof config === 'number') return config
  return onDatabase(config, async (database) => {
    console.log(`migrations applied (${database.kind})`)
  })
}

/**
 * `berth keys rotate`: a new master key, every data key re-wrapped with it, the old key retired.
 * On a PostgreSQL server it is safe while servers run (they read the file again when they meet a
 * key they do not know); the embedded database is refused while `serve` holds it. Resumable: a run
 * stopped anywhere is finished by the next.
 */
export async function rotateKeys(options: EntryOptions & { batchSize?: number }): Promise<number> {
  const config = configOrExit(options)
  if (typeof config === 'number') return config
  const path = masterKeyPathOf(config, resolve(config.dataDir))
  if (!path || !existsSync(path)) {
    console.error(`error: no master key file at ${path ?? '(a data dir in memory)'}: nothing to rotate`)
    return exitCodes.usage
  }
  return onDatabase(config, async (database) => {
    let shown = 0
    const report = await rotateMasterKey(database, path, {
      ...(options.batchSize ? { batchSize: options.batchSize } : {}),
      onProgress: (done, total) => {
        // A line per hundred or so: enough to follow, not a line per batch of one.
        if (done - shown < 100 && done < total) return
        shown = done
        console.log(`re-wrapped ${done} of ${total} data keys`)
      },
    })
    console.log(
      `${report.resumed ? 'finished the rotation begun earlier' : 'rotated'}: data keys wrapped by ${report.current}` +
        ` (${report.rewrapped} re-wrapped)${report.retired.length ? `; retired ${report.retired.join(', ')}` : ''}`,
    )
  })
}
