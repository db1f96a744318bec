import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { type Caller, createTestApp, type TestApp } from './helpers/http-app.ts'
import { recordingSimulatedProvider } from './helpers/recording-provider.ts'
import { createStack, type Stack } from './helpers/stack.ts'
import { waitFor } from './helpers/wait.ts'

// One-click resources through the API, on the simulated provider: the catalog with sizes and
// prices, a deployment made from `postgres small` with its password generated, handed to the
// provider, and shown nowhere but the (audited) credentials route. (Connection details are filled
// from endpoints, which simulated instances do not have: src/templates/outputs.test.ts.)

for (const kind of databaseKinds) {
  describe(`templates (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp
    let alice: Caller
    let applied: Array<Record<string, string>> = []
    let commands: string[][] = []

    before(async () => {
      database = await openTestDatabase(kind)
      const recording = recordingSimulatedProvider()
      applied = recording.applied
      commands = recording.commands
      stack = await createStack(database, { provider: recording.provider })
      app = await createTestApp(database, stack)
      alice = await app.user(`0x${'7a'.repeat(20)}`)
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    it('lists the catalog with sizes and their prices per hour and per month', async () => {
      const list = await alice('GET', '/v1/templates')
      assert.equal(list.status, 200)
      const postgres = list.body.items.find((t: { id: string }) => t.id === 'postgres')
      assert.deepEqual(
        postgres.sizes.map((s: { name: string; cpus: number; memoryMb: number; storageMb: number }) => [
          s.name,
          s.cpus,
          s.memoryMb,
          s.storageMb,
        ]),
        [
          ['small', 2, 4096, 10240],
          ['medium', 4, 16384, 51200],
        ],
      )
      for (const size of postgres.sizes) {
        assert.match(size.price.hourMicroUsd, /^[1-9]\d*$/)
        assert.equal(BigInt(size.price.monthMicroUsd), BigInt(size.price.hourMicroUsd) * 730n)
      }
      const detail = await alice('GET', '/v1/templates/postgres')
      assert.equal(detail.body.params.properties.user.default, 'app')
      assert.deepEqual(
        detail.body.credentials.map((c: { name: string }) => c.name),
        ['password'],
      )
      assert.ok(detail.body.outputs.includes('connection'))
      assert.equal((await alice('GET', '/v1/templates/nope')).status, 404)
    })

    it('deploys postgres small: a generated password handed to the provider, read only through the audited credentials route', async () => {
      const created = await alice('POST', '/v1/deployments', {
        template: 'postgres',
        size: 'small',
        name: 'shop-db',
        params: { user: 'shop' },
      })
      assert.equal(created.status, 202, JSON.stringify(created.body))
      const id = created.body.id as string
      assert.deepEqual(created.body.spec.template.params, { database: 'app', user: 'shop' })
      assert.deepEqual(created.body.spec.resources, { cpus: 2, memoryMb: 4096, gpus: 0, diskMb: 1024 })
      assert.deepEqual(created.body.spec.volumes, [
        { name: 'data', mountPath: '/var/lib/postgresql/data', sizeMb: 10240 },
      ])
      assert.equal(created.body.spec.env.POSTGRES_PASSWORD, undefined)
      assert.equal(created.body.progress.resource.stage, 'initialising')
      const running = await waitFor('running', async () => {
        const view = (await alice('GET', `/v1/deployments/${id}`)).body
        return view.status === 'running' ? view : null
      })
      assert.deepEqual(running.progress.resource, { stage: 'complete', percent: 100 })
      // Simulated instances publish no ports: no connection detail is shown half-filled.
      assert.deepEqual(running.endpoints, [])
      assert.deepEqual(running.connection, {})

      const read = await alice('GET', `/v1/deployments/${id}/credentials`)
      assert.equal(read.status, 200)
      assert.match(read.body.credentials.password, /^[A-Za-z0-9]{32}$/)
      assert.ok(applied.some((env) => env.POSTGRES_PASSWORD === read.body.credentials.password))
      for (const path of [`/v1/deployments/${id}`, '/v1/deployments', `/v1/deployments/${id}/events`]) {
        assert.ok(
          !JSON.stringify((await alice('GET', path)).body).includes(read.body.credentials.password),
          path,
        )
      }
      const audit = await alice('GET', `/v1/audit?action=deployment.credentials_read`)
      assert.equal(audit.status, 200, JSON.stringify(audit.body))
      assert.equal(
        audit.body.items.filter((e: { target: string }) => e.target === `deployment:${id}`).length,
        1,
      )
    })

    it('refuses a bad size, bad parameters, an unknown template, and a spec that names a template', async () => {
      const refused = async (body: unknown, pattern: RegExp) => {
        const reply = await alice('POST', '/v1/deployments', body)
        assert.equal(reply.status, 400, JSON.stringify(reply.body))
        assert.match(reply.body.error.message, pattern)
      }
      await refused({ template: 'postgres', size: 'huge', name: 'a' }, /no size "huge"; sizes: small, medium/)
      await refused({ template: 'postgres', name: 'a' }, /give a size: small, medium/)
      await refused(
        { template: 'postgres', size: 'small', name: 'a', params: { user: 'postgres' } },
        /params\.user: must match/,
      )
      await refused({ template: 'postgres', size: 'small', name: 'a', params: { shell: 'x' } }, /params/)
      await refused({ template: 'nope', size: 'small', name: 'a' }, /no template "nope"/)
      await refused({ template: 'postgres', size: 'small', name: 'a', image: 'x:1' }, /image/)
      const spoofed = await alice('POST', '/v1/deployments', {
        name: 'a',
        image: 'x:1',
        template: { id: 'postgres', size: 'small', params: {}, outputs: {}, credentials: {} },
      })
      assert.equal(
        spoofed.status,
        400,
        'an object is no template id: a spec cannot pass itself off as a template deployment',
      )
    })

    it('replays a keyed template create instead of making a second one', async () => {
      const body = { template: 'postgres', size: 'small', name: 'keyed-db' }
      const headers = { 'idempotency-key': 'template-create-1' }
      const first = await alice('POST', '/v1/deployments', body, headers)
      const again = await alice('POST', '/v1/deployments', body, headers)
      assert.equal(first.status, 202)
      assert.equal(again.body.id, first.body.id)
    })

    it('gives credentials only to callers allowed to change the deployment', async () => {
      const created = await alice('POST', '/v1/deployments', {
        template: 'postgres',
        size: 'small',
        name: 'ro-db',
      })
      const session = await app.session(`0x${'7a'.repeat(20)}`)
      const key = await session('POST', '/v1/api-keys', { name: 'reader', scopes: ['deployments:read'] })
      assert.equal(key.status, 201, JSON.stringify(key.body))
      const reader = app.bearer(key.body.key)
      assert.equal((await reader('GET', `/v1/deployments/${created.body.id}`)).status, 200)
      const denied = await reader('GET', `/v1/deployments/${created.body.id}/credentials`)
      assert.equal(denied.status, 403)
      assert.match(denied.body.error.message, /deployments:write/)
    })

    it('rotates the password in the running service, keeps the new one, and refuses while stopped', async () => {
      const created = await alice('POST', '/v1/deployments', {
        template: 'postgres',
        size: 'small',
        name: 'rotating-db',
        params: { user: 'shop' },
      })
      const id = created.body.id as string
      await waitFor(
        'running',
        async () => (await alice('GET', `/v1/deployments/${id}`)).body.status === 'running',
      )
      const before = (await alice('GET', `/v1/deployments/${id}/credentials`)).body.credentials.password
      const rotated = await alice('POST', `/v1/deployments/${id}/credentials/rotate`)
      assert.equal(rotated.status, 200, JSON.stringify(rotated.body))
      const after = rotated.body.credentials.password as string
      assert.match(after, /^[A-Za-z0-9]{32}$/)
      assert.notEqual(after, before)
      assert.deepEqual(commands.at(-1), [
        'psql',
        '-X',
        '-v',
        'ON_ERROR_STOP=1',
        '-U',
        'shop',
        '-d',
        'app',
        '-c',
        "SET lock_timeout = '10s'",
        '-c',
        `ALTER ROLE "shop" PASSWORD '${after}'`,
      ])
      assert.equal((await alice('GET', `/v1/deployments/${id}/credentials`)).body.credentials.password, after)
      const audit = await alice('GET', '/v1/audit?action=deployment.credentials_rotate')
      assert.equal(
        audit.body.items.filter((e: { target: string }) => e.target === `deployment:${id}`).length,
        1,
      )

      await alice('POST', `/v1/deployments/${id}/stop`)
      await waitFor(
        'stopped',
        async () => (await alice('GET', `/v1/deployments/${id}`)).body.status === 'stopped',
      )
      const refused = await alice('POST', `/v1/deployments/${id}/credentials/rotate`)
      assert.equal(refused.status, 409)
      assert.match(refused.body.error.message, /needs the deployment running \(it is stopped\)/)
    })
  })
}
