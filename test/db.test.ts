import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, it } from 'node:test'
import { sql } from 'drizzle-orm'
import { queryRows } from '../src/db/client.ts'
import { databaseKinds, openTestDatabase } from './helpers/db.ts'
import { createAccount } from './helpers/stack.ts'

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

    it('refuses a status, desired state, stage or stop reason the lifecycle does not know', async () => {
      const database = await openTestDatabase(kind)
      try {
        const owner = await createAccount(database)
        const insert = (fields: { status?: string; desired?: string; stage?: string; stopReason?: string }) =>
          database.db.execute(
            sql`insert into deployments (id, owner_id, name, spec, provider, status, desired_state, stage, percent, stop_reason)
                values (gen_random_uuid(), ${owner}, ${`d-${randomUUID()}`}, '{}'::jsonb, 'simulated',
                        ${fields.status ?? 'pending'}, ${fields.desired ?? 'running'}, ${fields.stage ?? 'queued'}, 0,
                        ${fields.stopReason ?? null})`,
          )
        await insert({})
        await insert({ status: 'stopped', desired: 'stopped', stopReason: 'out_of_funds' })
        const rejectsNaming = (write: Promise<unknown>, constraint: string) =>
          assert.rejects(write, (error: unknown) => {
            const text = `${(error as Error).message} ${String((error as { cause?: Error }).cause?.message)}`
            assert.match(text, new RegExp(constraint))
            return true
          })
        const refused = (fields: Parameters<typeof insert>[0], constraint: string) =>
          rejectsNaming(insert(fields), constraint)
        await refused({ status: 'up' }, 'deployments_status_check')
        await refused({ desired: 'paused' }, 'deployments_desired_state_check')
        await refused({ stage: 'downloading' }, 'deployments_stage_check')
        await refused({ stopReason: 'bored' }, 'deployments_stop_reason_check')
        const event = (status: string | null, stage: string | null) =>
          database.db.execute(
            sql`insert into deployment_events (deployment_id, seq, type, status, stage)
                values (gen_random_uuid(), 1, 'progress', ${status}, ${stage})`,
          )
        await event(null, 'pulling')
        await rejectsNaming(event('up', null), 'deployment_events_status_check')
        await rejectsNaming(event(null, 'downloading'), 'deployment_events_stage_check')
      } finally {
        await database.dispose()
      }
    })
  })
}
