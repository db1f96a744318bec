import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createDeploymentStore, type DeploymentStore } from '../src/control/deployment-store.ts'
import { systemSource } from '../src/domain/actor.ts'
import { BerthError } from '../src/domain/errors.ts'
import { deploymentSpecSchema } from '../src/domain/spec.ts'
import { createEventBus, type EventBus } from '../src/events/bus.ts'
import { createEventLog, type EventLog } from '../src/events/event-log.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { createAccount } from './helpers/stack.ts'

const spec = (name: string) => deploymentSpecSchema.parse({ name, image: 'example/app:1' })

for (const kind of databaseKinds) {
  describe(`deployment store (${kind})`, () => {
    let database: TestDatabase
    let bus: EventBus
    let store: DeploymentStore
    let eventLog: EventLog
    let owner: string

    before(async () => {
      database = await openTestDatabase(kind)
      bus = createEventBus(database)
      await bus.start()
      store = createDeploymentStore(database, bus)
      eventLog = createEventLog(database, bus)
      owner = await createAccount(database)
    })
    after(async () => {
      await bus.stop()
      await database.dispose()
    })

    // Creates that arrive together are written together; one bad row must not sink the others.
    it('answers each of many creates sent at once on its own, a taken name among them', async () => {
      const names = Array.from({ length: 40 }, (_, i) => `batch-${i}`)
      const outcomes = await Promise.allSettled(
        [...names, 'batch-7'].map((name) =>
          store.create({
            source: systemSource('test'),
            ownerId: owner,
            spec: spec(name),
            provider: 'simulated',
          }),
        ),
      )
      const created = outcomes.filter((o) => o.status === 'fulfilled').map((o) => o.value.row)
      const refused = outcomes.filter((o) => o.status === 'rejected').map((o) => o.reason as BerthError)

      assert.equal(created.length, 40)
      assert.deepEqual(new Set(created.map((row) => row.name)), new Set(names))
      assert.equal(refused.length, 1)
      assert.ok(refused[0] instanceof BerthError)
      assert.equal(refused[0].code, 'conflict')
      assert.match(refused[0].message, /"batch-7" already exists/)

      for (const row of created) {
        assert.equal(row.ownerId, owner)
        assert.equal(row.status, 'pending')
        const events = await eventLog.list(row.id, 0, 10)
        assert.deepEqual(
          events.map((e) => [e.seq, e.type, e.status]),
          [[1, 'created', 'pending']],
        )
      }
      const { total } = await store.list(owner, { limit: 1, offset: 0 })
      assert.equal(total, 40, 'the refused create wrote nothing')
    })
  })
}
