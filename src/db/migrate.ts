import { fileURLToPath } from 'node:url'
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import { BerthError } from '../domain/errors.ts'
import type { Database } from './client.ts'

const migrationsFolder = fileURLToPath(new URL('./migrations', import.meta.url))

// Arbitrary but fixed: every berth process agrees on it, so only one migrates at a time.
const MIGRATION_LOCK_KEY = 727_001

export class MigrationError extends BerthError {
  constructor(cause: unknown) {
    super('internal', `database migration failed: ${(cause as Error)?.message ?? String(cause)}`, { cause })
    this.name = 'MigrationError'
  }
}

/** Applies the committed migrations under an advisory lock. A failure is fatal for the caller. */
export async function runMigrations(database: Database): Promise<void> {
  try {
    await database.withAdvisoryLock(MIGRATION_LOCK_KEY, async () => {
      if (database.kind === 'pglite') {
        await migratePglite(database.db as never, { migrationsFolder })
      } else {
        await migratePg(database.db as never, { migrationsFolder })
      }
    })
  } catch (cause) {
    throw new MigrationError(cause)
  }
}
