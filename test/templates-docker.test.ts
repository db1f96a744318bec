import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { buildTestImage, type DockerEngine, ensureDockerEngine } from '../scripts/docker.ts'
import { buildPostgresImage } from '../scripts/postgres-image.ts'
import { deleteAndWait, onDocker, waitRunning } from './docker/berth-on-docker.ts'
import { api, type RunningBerth, signIn, startBerth } from './helpers/server.ts'

// `postgres small` on the real engine, end to end: berth serve runs the template (its image mapped
// by images.mirror to a PostgreSQL built here from the host's packages, since no registry can be
// reached), a real client connects through the endpoint berth reports with the credentials berth
// generated, and a rotation really changes the password: the old one is refused, the data stays.
// A template whose service refuses a new value keeps the old one.

interface View {
  id: string
  status: string
  endpoints: Array<{ containerPort: number; url: string }>
  connection: Record<string, string>
  progress: { resource?: { stage: string } }
}

async function query(connection: string, password: string, sql: string): Promise<unknown[]> {
  const url = new URL(connection)
  url.password = password
  const client = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 5000 })
  await client.connect()
  try {
    return (await client.query(sql)).rows
  } finally {
    await client.end()
  }
}

describe('templates on docker (e2e)', { timeout: 300_000 }, () => {
  let server: RunningBerth
  let client: ReturnType<typeof api>
  let dir: string
  let engine: DockerEngine | undefined
  const created: string[] = []

  before(async () => {
    engine = await ensureDockerEngine()
    await buildTestImage(engine.socketPath)
    const postgresImage = await buildPostgresImage(engine.socketPath)
    dir = mkdtempSync(join(tmpdir(), 'berth-templates-docker-'))
    const config = join(dir, 'berth.json')
    writeFileSync(
      config,
      JSON.stringify({
        images: { mirror: { 'postgres:16': postgresImage } },
        templates: { dirs: [fileURLToPath(new URL('./fixtures/templates/', import.meta.url))] },
      }),
    )
    server = await startBerth({
      args: ['--config', config],
      // postgres small asks for 2 CPUs, all this machine has: room for the second template too.
      env: { ...onDocker(engine.socketPath), BERTH_PROVIDERS__DOCKER__OVERCOMMIT: '4' },
    })
    client = api(server.url, (await signIn(server.url)).token)
  })
  after(async () => {
    if (client) await deleteAndWait(client, created)
    await server?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
    // Stops the engine only if this file had to start it (none answered).
    await engine?.stop()
  })

  const runningView = (id: string) => waitRunning<View>(client, id, 120_000)

  it('runs postgres small: a client connects with the generated password; a rotation changes it', async () => {
    const reply = await client.post<View>('/v1/deployments', {
      template: 'postgres',
      size: 'small',
      name: 'orders-db',
      params: { user: 'orders', database: 'shop' },
    })
    assert.equal(reply.status, 202, JSON.stringify(reply.body))
    created.push(reply.body.id)
    const view = await runningView(reply.body.id)
    assert.equal(view.progress.resource?.stage, 'complete')
    const endpoint = new URL(view.endpoints.find((e) => e.containerPort === 5432)!.url)
    const connection = view.connection.connection!
    assert.equal(connection, `postgresql://orders@${endpoint.hostname}:${endpoint.port}/shop`)

    const first = (
      await client.get<{ credentials: { password: string } }>(`/v1/deployments/${reply.body.id}/credentials`)
    ).body.credentials.password
    await query(connection, first, 'create table orders (id int primary key, item text)')
    await query(connection, first, "insert into orders values (1, 'tea')")

    const rotated = await client.post<{ credentials: { password: string } }>(
      `/v1/deployments/${reply.body.id}/credentials/rotate`,
    )
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body))
    const second = rotated.body.credentials.password
    assert.notEqual(second, first)
    await assert.rejects(query(connection, first, 'select 1'), /password authentication failed/)
    assert.deepEqual(await query(connection, second, 'select item from orders'), [{ item: 'tea' }])
  })

  it('keeps the old value when the service refuses the new one', async () => {
    const reply = await client.post<View>('/v1/deployments', { template: 'stubborn', name: 'stubborn' })
    assert.equal(reply.status, 202, JSON.stringify(reply.body))
    created.push(reply.body.id)
    await runningView(reply.body.id)
    const path = `/v1/deployments/${reply.body.id}/credentials`
    const before = (await client.get<{ credentials: { token: string } }>(path)).body.credentials.token
    assert.match(before, /^[0-9a-f]{24}$/)
    const refused = await client.post<{ error: { message: string } }>(`${path}/rotate`)
    assert.equal(refused.status, 422)
    assert.match(
      refused.body.error.message,
      /rotating token failed in replica 0 \(exit code 3\); the old value stays/,
    )
    assert.equal((await client.get<{ credentials: { token: string } }>(path)).body.credentials.token, before)
  })
})
