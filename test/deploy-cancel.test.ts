import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { systemSource } from '../src/domain/actor.ts'
import { deploymentSpecSchema } from '../src/domain/spec.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { createAccount, createStack, type Stack } from './helpers/stack.ts'
import { waitFor } from './helpers/wait.ts'

// A stop that arrives while a deploy is being applied cancels the provider's work at once, instead
// of waiting for a (here minute-long) pull to finish; the deployment ends stopped, never running.

for (const kind of databaseKinds) {
  describe(`cancelling a deploy in flight (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let owner: string

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database, {
        flags: { providers: { simulated: { pullMs: 60_000, createMs: 0, startMs: 0 } } },
      })
      owner = await createAccount(database)
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    it('a stop during a slow pull cancels it, and the deployment is stopped without ever running', async () => {
      const { row } = await stack.store.create({
        source: systemSource('test'),
        ownerId: owner,
        spec: deploymentSpecSchema.parse({ name: 'slow', image: 'app:1' }),
        provider: 'simulated',
      })
      await waitFor('deploying', async () => (await stack.store.get(owner, row.id)).status === 'deploying')
      const asked = Date.now()
      await stack.store.requestIntent(owner, row.id, 'stop', { source: systemSource('test') })
      await waitFor(
        'stopped',
        async () => (await stack.store.get(owner, row.id)).status === 'stopped',
        10_000,
      )
      assert.ok(Date.now() - asked < 10_000, 'well before the pull would have finished')
      const events = await stack.events.list(row.id, 0, 100)
      assert.ok(
        events.some((e) => e.type === 'deploy_cancelled'),
        events.map((e) => e.type).join(','),
      )
      assert.ok(!events.some((e) => e.status === 'running'))
      assert.equal((await stack.provider.observe(row.id))?.instances.length ?? 0, 0, 'nothing left running')
    })
  })
}
