import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { systemSource } from '../../src/domain/actor.ts'
import { deploymentSpecSchema } from '../../src/domain/spec.ts'
import { openTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { createTestApp, type Reply } from '../helpers/http-app.ts'
import { createAccount, createStack, type Stack } from '../helpers/stack.ts'
import { waitFor } from '../helpers/wait.ts'
import type { ReconcileDockerDeps } from './reconcile-docker.ts'

// The engine going away and coming back. The provider talks to the real engine through a unix
// socket relay owned by this test; closing the relay (and its connections, and its socket file)
// is, for berth, exactly an engine that stopped answering, without stopping the engine the other
// tests use.

/** A unix socket that forwards every connection to the engine's socket, until closed. */
export function engineRelay(engineSocket: string, path: string) {
  let server: Server | undefined
  const open = new Set<Socket>()
  return {
    path,
    start: () =>
      new Promise<void>((resolve, reject) => {
        server = createServer((client) => {
          const upstream = connect(engineSocket)
          for (const socket of [client, upstream]) {
            open.add(socket)
            socket.once('close', () => open.delete(socket))
            socket.on('error', () => {
              client.destroy()
              upstream.destroy()
            })
          }
          client.pipe(upstream).pipe(client)
        })
        server.once('error', reject)
        server.listen(path, () => resolve())
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy()
        // Closing a unix socket server also removes its file: callers then get ENOENT.
        server?.close(() => resolve())
      }),
  }
}

export function dockerOutageTests(deps: ReconcileDockerDeps & { socketPath(): Promise<string> }): void {
  describe('reconciler on docker: the engine unreachable', () => {
    let database: TestDatabase
    let stack: Stack
    let owner: string
    let image: string
    let relay: ReturnType<typeof engineRelay>
    let dir: string
    let user: (method: string, path: string, body?: unknown) => Promise<Reply>

    before(async () => {
      ;({ image } = await deps.setUp())
      dir = mkdtempSync(join(tmpdir(), 'berth-relay-'))
      relay = engineRelay(await deps.socketPath(), join(dir, 'docker.sock'))
      await relay.start()
      database = await openTestDatabase('pglite')
      stack = await createStack(database, {
        provider: await deps.newProvider({
          engine: { host: `unix://${relay.path}`, timeoutMs: 5000 },
          watchRetry: { baseDelayMs: 100, maxDelayMs: 500 },
        }),
        flags: { reconciler: { resyncSeconds: 1, backoffBaseMs: 100, backoffMaxMs: 500 } },
      })
      owner = await createAccount(database)
      user = await (await createTestApp(database, stack)).user('0x00000000000000000000000000000000000000aa')
    })
    after(async () => {
      await stack?.stop()
      await relay?.stop()
      await database?.dispose()
      rmSync(dir, { recursive: true, force: true })
    })

    const create = async (name: string) =>
      (
        await stack.store.create({
          source: systemSource('test'),
          ownerId: owner,
          spec: deploymentSpecSchema.parse({ name, image }),
          provider: 'docker',
        })
      ).row.id
    const rowOf = (id: string) => stack.store.get(owner, id)
    const eventsOf = async (id: string, type: string) =>
      (await stack.events.list(id, 0, 1000)).filter((e) => e.type === type)

    it('keeps running deployments running (degraded, said once), waits, and converges when it returns', async () => {
      const running = await create('steady')
      const created = await user('POST', '/v1/deployments', { name: 'served', image, provider: 'docker' })
      assert.equal(created.status, 202)
      const served: string = created.body.id
      await waitFor('running', async () => (await rowOf(running)).status === 'running', 30_000)
      await waitFor(
        'served running',
        async () => (await user('GET', `/v1/deployments/${served}`)).body.status === 'running',
        30_000,
      )
      assert.equal((await user('GET', `/v1/deployments/${served}/logs?tail=5`)).status, 200)

      await relay.stop()
      assert.equal(await stack.provider.ping(), false)
      await waitFor('a degraded event', async () => (await eventsOf(running, 'degraded')).length > 0)
      const waiting = await create('waiting')
      // Several failed looks at each, at 1 s resyncs and sub-second backoff.
      await waitFor('repeated failed looks', async () => (await rowOf(running)).attempts >= 4, 20_000)
      await waitFor('the new one waiting', async () => (await rowOf(waiting)).attempts >= 2, 20_000)
      // A request that needs the engine answers 503 with a plain sentence (no socket path, no engine
      // text); one that needs only the database still answers.
      const logs = await user('GET', `/v1/deployments/${served}/logs?tail=5`)
      assert.equal(logs.status, 503)
      assert.equal(logs.body.error.code, 'provider_unavailable')
      assert.doesNotMatch(logs.body.error.message, /docker|sock|ENOENT|ECONNREFUSED/i)
      assert.ok(logs.body.error.requestId)
      assert.equal((await user('GET', `/v1/deployments/${served}`)).status, 200)
      assert.equal((await rowOf(running)).status, 'running', 'an unreachable engine is not a failure')
      assert.equal((await eventsOf(running, 'degraded')).length, 1, 'degraded is said once per outage')
      assert.equal((await eventsOf(running, 'failed')).length, 0)
      const newOne = await rowOf(waiting)
      assert.notEqual(newOne.status, 'failed')
      assert.equal((await eventsOf(waiting, 'provider_unavailable')).length, 1)

      await relay.start()
      await waitFor(
        'both running, with a successful look since the engine returned',
        async () => {
          const [a, b] = [await rowOf(running), await rowOf(waiting)]
          return a.status === 'running' && a.attempts === 0 && b.status === 'running'
        },
        30_000,
      )
      assert.equal((await eventsOf(running, 'degraded')).length, 1)
    })
  })
}
