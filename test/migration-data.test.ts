import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import { configSchema } from '../src/config/schema.ts'
import { type Database, openDatabase } from '../src/db/client.ts'
import { runMigrations } from '../src/db/migrate.ts'
import { deploymentSpecSchema } from '../src/domain/spec.ts'
import { demandOf, valuesOf } from '../src/quotas/quota-limits.ts'
import { createQuotaStore } from '../src/quotas/quota-store.ts'
import { createPostgresDatabase, databaseKinds } from './helpers/db.ts'

// A database from before organisations, the audit log and the stored quota demand: what it held
// is still there after the migrations, belonging to whom it belonged, with what the new columns
// need worked out from it.

const migrations = fileURLToPath(new URL('../src/db/migrations', import.meta.url))
/** The last migration before organisations (0012). */
const BEFORE_ORGS = 11

/** A copy of the migrations that stops after `last`, as a database from then would have had. */
function migrationsUpTo(last: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-migrations-'))
  cpSync(migrations, dir, { recursive: true })
  const journalPath = join(dir, 'meta', '_journal.json')
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: Array<{ idx: number }> }
  journal.entries = journal.entries.filter((e) => e.idx <= last)
  writeFileSync(journalPath, JSON.stringify(journal))
  return dir
}

async function oldDatabase(kind: string): Promise<{ database: Database; dispose(): Promise<void> }> {
  const folder = migrationsUpTo(BEFORE_ORGS)
  try {
    if (kind === 'pglite') {
      const database = await openDatabase({ dataDir: 'memory://' })
      await migratePglite(database.db as never, { migrationsFolder: folder })
      return { database, dispose: () => database.close() }
    }
    const created = await createPostgresDatabase()
    const database = await openDatabase({ databaseUrl: created.url, dataDir: 'unused', maxConnections: 4 })
    await migratePg(database.db as never, { migrationsFolder: folder })
    return {
      database,
      async dispose() {
        await database.close()
        await created.drop()
      },
    }
  } finally {
    rmSync(folder, { recursive: true, force: true })
  }
}

for (const kind of databaseKinds) {
  describe(`migrating existing data (${kind})`, () => {
    it('keeps accounts, deployments and keys with their owners, and fills in what new columns need', async () => {
      const { database, dispose } = await oldDatabase(kind)
      try {
        const accountId = randomUUID()
        const address = `0x${'5a'.repeat(20)}`
        await database.query('insert into accounts (id, address) values ($1, $2)', [accountId, address])
        const spec = deploymentSpecSchema.parse({
          name: 'old',
          image: 'app:1',
          replicas: 2,
          ports: [{ containerPort: 80 }],
          resources: { cpus: 0.25, memoryMb: 128, diskMb: 10 },
          volumes: [{ name: 'data', mountPath: '/data', sizeMb: 50 }],
        })
        const deploymentId = randomUUID()
        await database.query(
          `insert into deployments (id, owner_id, name, spec, provider, status, desired_state, stage, percent)
           values ($1, $2, 'old', $3::jsonb, 'simulated', 'running', 'running', 'running', 100)`,
          [deploymentId, accountId, JSON.stringify(spec)],
        )
        await database.query(
          `insert into api_keys (id, account_id, name, prefix, key_hash) values ($1, $2, 'ci', 'berth_x', $3)`,
          [randomUUID(), accountId, randomUUID()],
        )

        await runMigrations(database)

        const [account] = await database.query<{
          kind: string
          slug: string | null
          deleted_at: Date | null
        }>('select kind, slug, deleted_at from accounts where id = $1', [accountId])
        assert.deepEqual(account, { kind: 'personal', slug: null, deleted_at: null })
        const [deployment] = await database.query<{ owner_id: string }>(
          'select owner_id from deployments where id = $1',
          [deploymentId],
        )
        assert.equal(deployment?.owner_id, accountId)
        const [key] = await database.query<{ account_id: string; scopes: unknown; last_used_ip: unknown }>(
          'select account_id, scopes, last_used_ip from api_keys where account_id = $1',
          [accountId],
        )
        assert.deepEqual(key, { account_id: accountId, scopes: null, last_used_ip: null })
        // The quota usage summed from the stored demand is what the spec holds.
        const usage = await createQuotaStore(database.db, configSchema.parse({}).quotas).usageOf(accountId)
        assert.deepEqual(valuesOf(usage), valuesOf({ ...demandOf(spec), apiKeys: 1 }))
        // The audit log starts empty: nothing is made up for what happened before it.
        const [entries] = await database.query<{ n: number }>(
          'select count(*)::int as n from audit_entries',
          [],
        )
        assert.equal(entries?.n, 0)
      } finally {
        await dispose()
      }
    })
  })
}
