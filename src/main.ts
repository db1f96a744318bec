import { createLogger, startBerth } from './app.ts'
import { loadConfig } from './config/load.ts'
import type { Config } from './config/schema.ts'
import { openDatabase } from './db/client.ts'
import { runMigrations } from './db/migrate.ts'
import { BerthError } from './domain/errors.ts'

// Process entries for `berth serve` and `berth migrate`. They resolve with an exit code:
// 0 ok, 1 unexpected failure, 2 invalid configuration.

export interface EntryOptions {
  configFile?: string
  flags: Record<string, unknown>
}

function configOrExit(options: EntryOptions): Config | number {
  try {
    return loadConfig({ ...(options.configFile ? { file: options.configFile } : {}), flags: options.flags })
  } catch (error) {
    if (error instanceof BerthError) {
      console.error(`error: ${error.message}`)
      return 2
    }
    throw error
  }
}

export async function serve(options: EntryOptions): Promise<number> {
  const config = configOrExit(options)
  if (typeof config === 'number') return config
  const logger = createLogger(config)
  let running: Awaited<ReturnType<typeof startBerth>>
  try {
    running = await startBerth(config, logger)
  } catch (error) {
    logger.fatal({ err: error }, `berth could not start: ${(error as Error).message}`)
    return 1
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'))
    process.once('SIGINT', () => resolve('SIGINT'))
  })
  logger.info({ signal }, 'shutting down')
  await running.stop()
  logger.info('stopped')
  return 0
}

export async function migrate(options: EntryOptions): Promise<number> {
  const config = configOrExit(options)
  if (typeof config === 'number') return config
  const database = await openDatabase({
    dataDir: config.dataDir,
    ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
  })
  try {
    await runMigrations(database)
    console.log(`migrations applied (${database.kind})`)
    return 0
  } catch (error) {
    console.error(`error: ${(error as Error).message}`)
    return 1
  } finally {
    await database.close()
  }
}
