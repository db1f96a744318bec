import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { type Database, type DatabaseKind, openDatabase } from '../../src/db/client.ts'
import { runMigrations } from '../../src/db/migrate.ts'

// Integration tests run on both databases: PGlite in memory, and a fresh database on the
// throwaway PostgreSQL server that scripts/test.ts starts (BERTH_TEST_POSTGRES_URL).

export const databaseKinds: readonly DatabaseKind[] = ['pglite', 'postgres']

export function testPostgresUrl(): string {
  const url = process.env.BERTH_TEST_POSTGRES_URL
  if (!url) throw new Error('BERTH_TEST_POSTGRES_URL is not set: run the tests with `npm test`')
  return url
}

/** Creates an empty database on the test server and returns its URL. */
export async function createPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = testPostgresUrl()
  const name = `berth_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = new URL(base)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: base })
      await client.connect()
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await client.end()
    },
  }
}

export interface TestDatabase extends Database {
  dispose(): Promise<void>
}

/** A migrated, empty database of the given kind. */
export async function openTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  if (kind === 'pglite') {
    const database = await openDatabase({ dataDir: 'memory://' })
    await runMigrations(database)
    return { ...database, dispose: () => database.close() }
  }
  const created = await createPostgresDatabase()
  const database = await openDatabase({ databaseUrl: created.url, dataDir: 'unused', maxConnections: 10 })
  await runMigrations(database)
  return {
    ...database,
    async dispose() {
      await database.close()
      await created.drop()
    },
  }
}
