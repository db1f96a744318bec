import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { eq } from 'drizzle-orm'
import { registryCredentials } from '../src/db/schema/index.ts'
import type { RegistryCredential } from '../src/providers/provider.ts'
import { openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { type Caller, createTestApp, type TestApp } from './helpers/http-app.ts'
import { recordingSimulatedProvider } from './helpers/recording-provider.ts'
import { createStack, type Stack } from './helpers/stack.ts'
import { waitFor } from './helpers/wait.ts'

// An owner's own private registry credentials: set once, kept sealed, listed without the password,
// given (opened) to the provider for that owner's deployments only, replaced per registry, removed.

const PASSWORD = 'tenant-registry-canary-7d1f'

describe('registry credentials', () => {
  let database: TestDatabase
  let stack: Stack
  let app: TestApp
  let alice: Caller
  let bob: Caller
  let registries: Map<string, RegistryCredential[]>

  before(async () => {
    database = await openTestDatabase('pglite')
    const recording = recordingSimulatedProvider()
    registries = recording.registries
    stack = await createStack(database, { provider: recording.provider })
    app = await createTestApp(database, stack)
    alice = await app.user(`0x${'a1'.repeat(20)}`)
    bob = await app.user(`0x${'b2'.repeat(20)}`)
  })
  after(async () => {
    await stack.stop()
    await database.dispose()
  })

  const running = async (caller: Caller, name: string): Promise<string> => {
    const created = await caller('POST', '/v1/deployments', { name, image: 'registry.acme.example/app:1' })
    assert.equal(created.status, 202, JSON.stringify(created.body))
    const id = created.body.id as string
    await waitFor(
      'running',
      async () => (await caller('GET', `/v1/deployments/${id}`)).body.status === 'running',
    )
    return id
  }

  it("keeps the password sealed, never shows it, and gives it only to its owner's deployments", async () => {
    const set = await alice('POST', '/v1/registry-credentials', {
      registry: 'Registry.Acme.Example',
      username: 'alice',
      password: PASSWORD,
    })
    assert.equal(set.status, 200, JSON.stringify(set.body))
    assert.equal(set.body.registry, 'registry.acme.example')
    assert.equal(set.body.password, undefined)
    const listed = await alice('GET', '/v1/registry-credentials')
    assert.deepEqual(
      listed.body.items.map((c: { registry: string; username: string }) => [c.registry, c.username]),
      [['registry.acme.example', 'alice']],
    )
    assert.ok(!JSON.stringify(listed.body).includes(PASSWORD))
    const [row] = await database.db
      .select()
      .from(registryCredentials)
      .where(eq(registryCredentials.id, set.body.id))
    assert.match(row!.password, /^berth:v1:/, 'stored sealed')
    assert.ok(!row!.password.includes(PASSWORD))

    const mine = await running(alice, 'private-app')
    assert.deepEqual(registries.get(mine), [
      { registry: 'registry.acme.example', username: 'alice', password: PASSWORD },
    ])
    const theirs = await running(bob, 'private-app')
    assert.deepEqual(registries.get(theirs), [], "another owner's deployment never gets them")
    assert.deepEqual((await bob('GET', '/v1/registry-credentials')).body.items, [])
    assert.equal((await bob('DELETE', `/v1/registry-credentials/${set.body.id}`)).status, 404)
    const audit = await alice('GET', '/v1/audit?action=registry_credential.set')
    assert.equal(audit.body.items.length, 1)
    assert.ok(!JSON.stringify(audit.body).includes(PASSWORD))
  })

  it('replaces the credentials of a registry, refuses what is not a registry host, and removes them', async () => {
    const first = await alice('POST', '/v1/registry-credentials', {
      registry: 'registry.acme.example',
      username: 'alice2',
      password: 'second',
    })
    const listed = (await alice('GET', '/v1/registry-credentials')).body.items
    assert.equal(listed.length, 1)
    assert.equal(listed[0].username, 'alice2')
    assert.equal(listed[0].id, first.body.id)
    for (const registry of ['https://registry.acme.example/v2', 'registry acme', '']) {
      const bad = await alice('POST', '/v1/registry-credentials', { registry, username: 'a', password: 'b' })
      assert.equal(bad.status, 400, registry)
    }
    const unknown = await alice('POST', '/v1/registry-credentials', {
      registry: 'r.example',
      username: 'a',
      password: 'b',
      extra: 1,
    })
    assert.equal(unknown.status, 400)
    assert.equal((await alice('DELETE', `/v1/registry-credentials/${first.body.id}`)).status, 204)
    assert.deepEqual((await alice('GET', '/v1/registry-credentials')).body.items, [])
    const removed = await alice('GET', '/v1/audit?action=registry_credential.delete')
    assert.deepEqual(
      removed.body.items.map((e: { target: string }) => e.target),
      [`registry-credential:${first.body.id}`],
    )
  })
})
