import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type Docker from 'dockerode'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { createPostgresDatabase } from '../helpers/db.ts'
import { api, type RunningBerth, signIn, startBerth } from '../helpers/server.ts'
import { waitFor } from '../helpers/wait.ts'
import { type DockerTestEngine, deleteAndWait, onDocker } from './berth-on-docker.ts'

// The operator's registry credentials on the real engine: an image of a private repository is
// already in the engine's cache (here: the test image, tagged as if pulled from a private registry
// with the operator's credentials). The wallet the credentials are allowed for runs it from the
// cache; any other tenant is refused with 403 naming the registry, although nothing would have to
// be pulled. Registered from providers-docker.test.ts.

const REGISTRY = 'registry.private.example'
const PRIVATE_IMAGE = `${REGISTRY}/acme/agent:1`

interface Deployment {
  id: string
  status: string
}

export function dockerRegistryAccessTests(setUp: () => Promise<DockerTestEngine>) {
  describe('private registry credentials on docker (e2e)', () => {
    let server: RunningBerth
    let database: Awaited<ReturnType<typeof createPostgresDatabase>>
    let docker: Docker
    const allowedKey = generatePrivateKey()
    const otherKey = generatePrivateKey()
    const created: Array<{ client: ReturnType<typeof api>; id: string }> = []

    before(async () => {
      const engine = await setUp()
      docker = engine.docker
      const [repo, tag] = PRIVATE_IMAGE.split(/:(?=[^:]+$)/) as [string, string]
      await docker.getImage(engine.image).tag({ repo, tag })
      database = await createPostgresDatabase()
      server = await startBerth({
        databaseUrl: database.url,
        env: {
          ...onDocker(engine.socketPath),
          // Listed, so berth does not look the (made-up) registry host up.
          BERTH_PROVIDERS__DOCKER__ALLOWED_REGISTRIES: `${REGISTRY},docker.io`,
          BERTH_PROVIDERS__DOCKER__REGISTRY_AUTHS: JSON.stringify([
            {
              registry: REGISTRY,
              username: 'operator',
              password: 'operator-registry-password',
              repositories: ['acme/*'],
              allowedFor: [privateKeyToAccount(allowedKey).address],
            },
          ]),
        },
      })
    })
    after(async () => {
      for (const { client, id } of created) await deleteAndWait(client, [id])
      await server?.stop()
      await database?.drop()
      await docker
        ?.getImage(PRIVATE_IMAGE)
        .remove()
        .catch(() => {})
    })

    it('runs a cached private image for the wallet the credentials are allowed for, and for no one else', async () => {
      const other = api(server.url, (await signIn(server.url, otherKey)).token)
      const refused = await other.post<{ error: { code: string; message: string } }>('/v1/deployments', {
        name: 'borrowed',
        image: PRIVATE_IMAGE,
      })
      assert.equal(refused.status, 403, JSON.stringify(refused.body))
      assert.equal(refused.body.error.code, 'forbidden')
      assert.match(
        refused.body.error.message,
        new RegExp(`private repository of ${REGISTRY.replaceAll('.', '\\.')}`),
      )
      assert.ok(!JSON.stringify(refused.body).includes('operator-registry-password'))
      const listed = await other.get<{ items: unknown[] }>('/v1/deployments')
      assert.equal(listed.body.items.length, 0, 'nothing was written')

      const allowed = api(server.url, (await signIn(server.url, allowedKey)).token)
      const ok = await allowed.post<Deployment>('/v1/deployments', { name: 'agent', image: PRIVATE_IMAGE })
      assert.equal(ok.status, 202, JSON.stringify(ok.body))
      created.push({ client: allowed, id: ok.body.id })
      await waitFor(
        'running from the cache',
        async () =>
          (await allowed.get<Deployment>(`/v1/deployments/${ok.body.id}`)).body.status === 'running',
        30_000,
      )

      // A registry on a loopback address is refused even with nothing configured for it.
      const loopback = await other.post<{ error: { message: string } }>('/v1/deployments', {
        name: 'inside',
        image: '127.0.0.1:5000/app:1',
      })
      assert.equal(loopback.status, 403)
      assert.match(loopback.body.error.message, /not allowed on this server|private address/)
    })
  })
}
