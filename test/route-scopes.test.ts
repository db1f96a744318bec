import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { scopeOf } from '../src/http/route-scopes.ts'
import { openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { createTestApp } from './helpers/http-app.ts'
import { createStack, type Stack } from './helpers/stack.ts'

// Every operation of the API says what acting for an organisation needs, so a new route cannot
// be reachable by every member's role by being forgotten.

describe('route scopes', () => {
  let database: TestDatabase
  let stack: Stack
  before(async () => {
    database = await openTestDatabase('pglite')
    stack = await createStack(database)
  })
  after(async () => {
    await stack.stop()
    await database.dispose()
  })

  it('lists every operation of /openapi.json', async () => {
    const app = await createTestApp(database, stack)
    const doc = (await (await app.user(`0x${'ee'.repeat(20)}`))('GET', '/openapi.json')).body
    const missing: string[] = []
    for (const [path, methods] of Object.entries(doc.paths as Record<string, object>)) {
      for (const method of Object.keys(methods)) {
        if (scopeOf(method.toUpperCase(), path.replace(/\{[^}]+\}/g, 'x')) === undefined) {
          missing.push(`${method.toUpperCase()} ${path}`)
        }
      }
    }
    assert.deepEqual(missing, [])
  })
})
