import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { type Database, openDatabase } from '../src/db/client.ts'
import { createEventBus, type EventBus } from '../src/events/bus.ts'
import { createPostgresDatabase } from './helpers/db.ts'
import { waitFor } from './helpers/wait.ts'

// Two control planes on one PostgreSQL tell each other about changes through NOTIFY.

describe('event bus across two processes (postgres)', () => {
  let drop: () => Promise<void>
  const databases: Database[] = []
  let a: EventBus
  let b: EventBus

  before(async () => {
    const created = await createPostgresDatabase()
    drop = created.drop
    for (let i = 0; i < 2; i++) {
      databases.push(await openDatabase({ databaseUrl: created.url, dataDir: 'unused', maxConnections: 4 }))
    }
    a = createEventBus(databases[0]!)
    b = createEventBus(databases[1]!)
    await a.start()
    await b.start()
  })
  after(async () => {
    await a.stop()
    await b.stop()
    for (const database of databases) await database.close()
    await drop()
  })

  it('tells the other process of a change, and its own listeners only once', async () => {
    const owner = randomUUID()
    const [first, third] = [randomUUID(), randomUUID()]
    let heardHere = 0
    let heardThere = false
    let thirdHeardHere = false
    const offs = [
      a.onChanged(first, () => heardHere++),
      b.onChanged(first, () => {
        heardThere = true
      }),
      a.onChanged(third, () => {
        thirdHeardHere = true
      }),
    ]

    a.changed(first, owner)
    await waitFor('the other process to hear the change', () => heardThere)
    // A connection gets notifications in commit order: once this process hears one sent after
    // the other process heard the first, its own copy of the first has come back too.
    b.changed(third, owner)
    await waitFor('this process to hear the other one', () => thirdHeardHere)
    assert.equal(heardHere, 1, 'its own notification, come back, was not told again')
    for (const off of offs) off()
  })

  it('carries intents, even a tick full of them', async () => {
    const owner = randomUUID()
    const ids = Array.from({ length: 250 }, () => randomUUID())
    const intents = new Set<string>()
    const offs = ids.map((id) => b.onIntent(id, () => intents.add(id)))
    for (const id of ids) a.changed(id, owner, { intent: true })
    await waitFor(`all ${ids.length} intents to arrive`, () => intents.size === ids.length, 10_000)
    for (const off of offs) off()
  })
})
