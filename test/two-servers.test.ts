import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { generatePrivateKey } from 'viem/accounts'
import { readInstanceTable } from '../src/providers/simulated/journal.ts'
import { loadOrCreateKeyring } from '../src/secrets/keyring.ts'
import { createPostgresDatabase } from './helpers/db.ts'
import { api, LIFTED_QUOTAS, type RunningBerth, signIn, startBerth } from './helpers/server.ts'
import { waitFor } from './helpers/wait.ts'

// Two `berth serve` processes on one PostgreSQL database (and one shared simulated provider, as
// two replicas would share one Docker engine). Every step a reconciler takes is recorded with its
// worker id and lease (fencing) token; no token may be used by two workers, tokens only grow along
// a deployment's events, and each replica exists exactly once.

const DEPLOYMENTS = 100

describe('two control planes on one PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>
  const servers: RunningBerth[] = []
  let stateDir: string

  before(async () => {
    database = await createPostgresDatabase()
    stateDir = mkdtempSync(join(tmpdir(), 'berth-shared-sim-'))
    // Replicas of one control plane share its master key file, as an operator's would.
    const masterKeyFile = join(stateDir, 'master.key')
    loadOrCreateKeyring(masterKeyFile)
    const env = {
      ...LIFTED_QUOTAS,
      BERTH_MASTER_KEY_FILE: masterKeyFile,
      BERTH_LOG_LEVEL: 'warn',
      BERTH_SESSION_SECRET: 'two-servers-share-one-session-secret-0123456789',
      BERTH_PROVIDERS__SIMULATED__STATE_DIR: stateDir,
      BERTH_PROVIDERS__SIMULATED__PULL_MS: '5',
      BERTH_PROVIDERS__SIMULATED__CREATE_MS: '5',
      BERTH_PROVIDERS__SIMULATED__START_MS: '5',
      BERTH_RECONCILER__POLL_INTERVAL_MS: '50',
    }
    servers.push(await startBerth({ databaseUrl: database.url, env }))
    servers.push(await startBerth({ databaseUrl: database.url, env }))
  })
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()))
    await database?.drop()
  })

  it('never acts on one deployment from both processes at once', { timeout: 180_000 }, async () => {
    const key = generatePrivateKey()
    const [a, b] = servers as [RunningBerth, RunningBerth]
    const sessions = [await signIn(a.url, key), await signIn(b.url, key)]
    const ids: string[] = []
    await Promise.all(
      Array.from({ length: DEPLOYMENTS }, async (_, i) => {
        const server = servers[i % 2]!
        const response = await api(server.url, sessions[i % 2]!.token).post<{ id: string }>(
          '/v1/deployments',
          {
            name: `pair-${i}`,
            image: 'example/app:1',
            replicas: 1 + (i % 2),
          },
        )
        assert.equal(response.status, 202)
        ids.push(response.body.id)
      }),
    )
    const client = api(a.url, sessions[0]!.token)
    await waitFor(
      'all deployments to run',
      async () =>
        (await client.get<{ total: number }>('/v1/deployments?status=running&limit=1')).body.total ===
        DEPLOYMENTS,
      120_000,
      200,
    )

    const db = new pg.Client({ connectionString: database.url })
    await db.connect()
    try {
      const { rows } = await db.query<{
        deployment_id: string
        seq: number
        actor: string
        lease_token: string
      }>(
        'select deployment_id, seq, actor, lease_token from deployment_events where lease_token is not null order by deployment_id, seq',
      )
      const holder = new Map<string, string>()
      let previous: { id: string; token: number } | undefined
      for (const row of rows) {
        const key = `${row.deployment_id}/${row.lease_token}`
        assert.ok(!holder.has(key) || holder.get(key) === row.actor, `lease ${key} used by two workers`)
        holder.set(key, row.actor)
        const token = Number(row.lease_token)
        if (previous?.id === row.deployment_id) assert.ok(token >= previous.token, 'fencing tokens only grow')
        previous = { id: row.deployment_id, token }
      }
      const workers = new Set(rows.map((r) => r.actor))
      assert.equal(workers.size, 2, `both processes reconciled (workers: ${[...workers].join(', ')})`)
    } finally {
      await db.end()
    }

    for (const id of ids) {
      const { body } = await client.get<{ spec: { replicas: number } }>(`/v1/deployments/${id}`)
      const instances = readInstanceTable(stateDir).get(id)?.size ?? 0
      assert.equal(instances, body.spec.replicas, `${id}: exactly one instance per replica`)
    }
  })
})
