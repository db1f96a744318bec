import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { eq } from 'drizzle-orm'
import { accounts, deployments, ownerDataKeys } from '../src/db/schema/index.ts'
import { systemSource } from '../src/domain/actor.ts'
import { singleImageSpecSchema } from '../src/domain/spec.ts'
import { sealLegacySecrets } from '../src/secrets/legacy.ts'
import { ephemeralKeys } from '../src/secrets/master-keys.ts'
import { openSpecSecrets, secretEnvPlaceOf } from '../src/secrets/spec-secrets.ts'
import { createVault } from '../src/secrets/vault.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { type Caller, createTestApp } from './helpers/http-app.ts'
import { recordingSimulatedProvider } from './helpers/recording-provider.ts'
import { singleImage } from './helpers/single-image.ts'
import { createStack, type Stack } from './helpers/stack.ts'
import { testVault } from './helpers/vault.ts'
import { waitFor } from './helpers/wait.ts'

// Secrets at rest: a spec's secret env values are stored sealed, reach the provider opened, and
// are shown nowhere; a sealed value moved to another row or owner does not open; a database whose
// data keys another master key wrapped is refused; values an older berth kept in the clear are
// sealed at start.

const CANARY = `canary-${randomUUID()}`

for (const kind of databaseKinds) {
  describe(`secrets at rest (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let alice: Caller
    /** The env each apply gave the provider. */
    let applied: Array<Record<string, string>> = []

    before(async () => {
      database = await openTestDatabase(kind)
      const recording = recordingSimulatedProvider()
      applied = recording.applied
      stack = await createStack(database, { provider: recording.provider })
      alice = await (await createTestApp(database, stack)).user(`0x${'5e'.repeat(20)}`)
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    it('stores secret env values sealed, gives them to the provider opened, and shows only their names', async () => {
      const created = await alice('POST', '/v1/deployments', {
        name: 'sealed',
        image: 'app:1',
        env: { DB_PASSWORD: CANARY, MODE: 'plain' },
        secretEnv: ['DB_PASSWORD'],
      })
      assert.equal(created.status, 202, JSON.stringify(created.body))
      const id = created.body.id as string
      await waitFor(
        'running',
        async () => (await alice('GET', `/v1/deployments/${id}`)).body.status === 'running',
      )
      assert.ok(applied.some((env) => env.DB_PASSWORD === CANARY && env.MODE === 'plain'))

      const [row] = await database.db.select().from(deployments).where(eq(deployments.id, id))
      const stored = JSON.stringify(row!.spec)
      assert.ok(!stored.includes(CANARY), 'not in the stored spec')
      assert.match(stored, /"DB_PASSWORD":"berth:v1:/)
      const replies = [
        created,
        await alice('GET', `/v1/deployments/${id}`),
        await alice('GET', '/v1/deployments'),
        await alice('GET', `/v1/deployments/${id}/events`),
      ]
      for (const reply of replies) assert.ok(!JSON.stringify(reply.body).includes(CANARY))
      const view = replies[1]!.body
      assert.deepEqual(view.spec.env, { MODE: 'plain' })
      assert.deepEqual(view.spec.secretEnv, ['DB_PASSWORD'])

      const [key] = await database.db
        .select()
        .from(ownerDataKeys)
        .where(eq(ownerDataKeys.ownerId, row!.ownerId))
      assert.match(key!.wrappedKey, /^berth:v1:/, 'the data key is stored wrapped')
    })

    it('refuses a spec that names a secret variable twice', async () => {
      const reply = await alice('POST', '/v1/deployments', {
        name: 'twice',
        image: 'app:1',
        env: { TOKEN: 'x' },
        secretEnv: ['TOKEN', 'TOKEN'],
      })
      assert.equal(reply.status, 400)
      assert.match(reply.body.error.message, /secretEnv\.1: TOKEN is listed twice/)
    })

    it('refuses a sealed value moved to another deployment, owner or variable', async () => {
      const vault = testVault(database.db)
      const [owner, other] = [randomUUID(), randomUUID()]
      const [one, two] = [randomUUID(), randomUUID()]
      const sealed = await vault.seal(secretEnvPlaceOf(owner, one, 'TOKEN'), 'value')
      assert.equal(await vault.open(secretEnvPlaceOf(owner, one, 'TOKEN'), sealed), 'value')
      for (const place of [
        secretEnvPlaceOf(owner, two, 'TOKEN'),
        secretEnvPlaceOf(other, one, 'TOKEN'),
        secretEnvPlaceOf(owner, one, 'OTHER'),
      ]) {
        await assert.rejects(vault.open(place, sealed), /does not open here/)
      }
    })

    it('refuses to go on with a master key that did not wrap the data keys there', async () => {
      // The first start records its key; a replica with another file is refused, and cannot
      // wrap a new owner's data key with its own key either.
      await testVault(database.db).checkMasterKeys()
      const stranger = createVault(database.db, ephemeralKeys())
      await assert.rejects(
        stranger.checkMasterKeys(),
        /sealed under master key v1-[0-9a-f]{8}, which the master key file does not hold/,
      )
      await assert.rejects(
        stranger.seal(secretEnvPlaceOf(randomUUID(), randomUUID(), 'X'), 'v'),
        /the database wraps new data keys with master key v1-[0-9a-f]{8}, which the master key file does not hold/,
      )
      await testVault(database.db).checkMasterKeys()
    })

    it('seals the secret env values an older berth stored in the clear, and finds none the next time', async () => {
      const owner = randomUUID()
      await database.db
        .insert(accounts)
        .values({ id: owner, address: `0x${owner.replace(/-/g, '').padEnd(40, '0')}` })
      const spec = singleImageSpecSchema.parse({
        name: `legacy-${owner.slice(0, 8)}`,
        image: 'app:1',
        env: { OLD_SECRET: CANARY, PLAIN: 'p' },
        secretEnv: ['OLD_SECRET'],
      })
      // Written as an older berth did: the spec as asked, straight to the store.
      const { row } = await stack.store.create({
        ownerId: owner,
        spec,
        provider: 'simulated',
        source: systemSource('test'),
      })
      await stack.store.requestIntent(owner, row.id, 'stop', { source: systemSource('test') })
      const vault = testVault(database.db)
      assert.ok((await sealLegacySecrets(database.db, vault)) >= 1)
      const [after] = await database.db.select().from(deployments).where(eq(deployments.id, row.id))
      assert.ok(!JSON.stringify(after!.spec).includes(CANARY))
      const opened = await openSpecSecrets(vault, { ownerId: owner, deploymentId: row.id }, after!.spec)
      assert.deepEqual(singleImage(opened).env, { OLD_SECRET: CANARY, PLAIN: 'p' })
      assert.equal(await sealLegacySecrets(database.db, vault), 0, 'nothing left in the clear')
    })
  })
}
