import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { sql } from 'drizzle-orm'
import { queryRows } from '../src/db/client.ts'
import { databaseKinds, openTestDatabase } from './helpers/db.ts'

for (const kind of databaseKinds) {
  describe(`database (${kind})`, () => {
    it('applies the committed migrations, and applying them again changes nothing', async () => {
      const database = await openTestDatabase(kind)
      try {
        const { runMigrations } = await import('../src/db/migrate.ts')
        await runMigrations(database)
        const rows = await queryRows<{ table_name: string }>(
          database.db,
          sql`select table_name from information_schema.tables where table_schema = 'public' order by 1`,
        )
        const tables = rows.map((r) => r.table_name)
        for (const table of [
          'accounts',
          'api_keys',
          'auth_nonces',
          'deployment_events',
          'deployments',
          'idempotency_keys',
          'sessions',
        ]) {
          assert.ok(tables.includes(table), `missing table ${table}`)
        }
        const [columns] = await queryRows<{ n: number }>(
          database.db,
          sql`select count(*)::int as n from information_schema.columns
              where table_schema = 'public' and data_type = 'timestamp without time zone'`,
        )
        assert.equal(columns?.n, 0, 'every timestamp is timestamptz')
      } finally {
        await database.dispose()
      }
    })
  })
}
