import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { PG_BIN } from '../scripts/postgres.ts'
import { api, type RunningBerth, runCli, signIn, startBerthOnPostgres } from './helpers/server.ts'
import { waitFor } from './helpers/wait.ts'

// A canary secret given to the real `berth serve` (on a PostgreSQL server, logging everything)
// appears in no API answer, no line of its log and nowhere in a pg_dump of its database; the
// master key berth generated on first start is a file only its owner reads; a restart opens what
// was sealed; a server started with another master key on the same database refuses to start.

const CANARY = `canary-${randomUUID()}`

describe('secrets at rest (e2e)', () => {
  let server: RunningBerth
  let token: string
  let client: ReturnType<typeof api>
  let id: string

  before(async () => {
    server = await startBerthOnPostgres({ env: { BERTH_LOG_LEVEL: 'trace', BERTH_LOG_FORMAT: 'json' } })
    token = (await signIn(server.url)).token
    client = api(server.url, token)
    const created = await client.post<{ id: string }>('/v1/deployments', {
      name: 'db-client',
      image: 'app:1',
      env: { DB_PASSWORD: CANARY, DB_HOST: 'db' },
      secretEnv: ['DB_PASSWORD'],
    })
    assert.equal(created.status, 202, JSON.stringify(created.body))
    assert.ok(!JSON.stringify(created.body).includes(CANARY))
    id = created.body.id
    await waitFor(
      'running',
      async () => (await client.get<{ status: string }>(`/v1/deployments/${id}`)).body.status === 'running',
    )
  })
  after(() => server?.stop())

  it('keeps the canary out of every answer, the log and the database dump', async () => {
    for (const path of [
      `/v1/deployments/${id}`,
      '/v1/deployments',
      `/v1/deployments/${id}/events`,
      '/v1/audit',
    ]) {
      const reply = await client.get(path)
      assert.equal(reply.status, 200, path)
      assert.ok(!JSON.stringify(reply.body).includes(CANARY), `not in ${path}`)
    }
    assert.ok(!server.output().includes(CANARY), 'not in the log')
    const dump = execFileSync(join(PG_BIN, 'pg_dump'), ['--data-only', server.databaseUrl!], {
      maxBuffer: 256 * 1024 * 1024,
    }).toString()
    assert.ok(dump.includes('berth:v1:'), 'the dump holds sealed values')
    assert.ok(!dump.includes(CANARY), 'not in the dump')
  })

  it('generates the master key on first start, loudly, readable by its owner only', () => {
    const file = join(server.dataDir, 'master.key')
    assert.ok(existsSync(file))
    assert.equal(statSync(file).mode & 0o777, 0o600)
    assert.match(server.output(), /GENERATED A NEW MASTER KEY in .*master\.key/)
  })

  it('opens what it sealed after a restart: sessions and deployments carry on', async () => {
    await server.restart()
    client = api(server.url, token) // a new port, the same session
    const reply = await client.get<{ status: string }>(`/v1/deployments/${id}`)
    assert.equal(reply.status, 200, 'a session signed before the restart still verifies')
    const restarted = await client.post(`/v1/deployments/${id}/restart`)
    assert.equal(restarted.status, 202)
    await waitFor(
      'running again',
      async () => (await client.get<{ status: string }>(`/v1/deployments/${id}`)).body.status === 'running',
    )
  })

  it('refuses to start on the same database with another master key, naming it', async () => {
    const otherDir = mkdtempSync(join(tmpdir(), 'berth-other-key-'))
    try {
      const result = await runCli('http://127.0.0.1:1', [
        'serve',
        '--port',
        '0',
        '--data-dir',
        otherDir,
        '--database-url',
        server.databaseUrl!,
      ])
      assert.notEqual(result.code, 0)
      assert.match(
        result.stdout + result.stderr,
        /sealed under master key v1-[0-9a-f]{8}, which the master key file does not hold/,
      )
    } finally {
      rmSync(otherDir, { recursive: true, force: true })
    }
  })
})
