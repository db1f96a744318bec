import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pino } from 'pino'
import { type Database, openDatabase } from '../src/db/client.ts'
import { runMigrations } from '../src/db/migrate.ts'
import { ownerDataKeys } from '../src/db/schema/index.ts'
import { keyringOf, loadOrCreateKeyring, readKeyringFile } from '../src/secrets/keyring.ts'
import { openMasterKeys } from '../src/secrets/master-keys.ts'
import { createVault, type SealedPlace } from '../src/secrets/vault.ts'
import { createPostgresDatabase } from './helpers/db.ts'
import { berthBin } from './helpers/server.ts'
import { waitFor } from './helpers/wait.ts'

// `berth keys rotate` on a real PostgreSQL server: killed (SIGKILL) in the middle of re-wrapping,
// every secret still opens; run again, it finishes the same rotation, retires the old key, and
// every secret opens with the new key alone.

const OWNERS = 1200
const silent = pino({ level: 'silent' })

function rotate(
  databaseUrl: string,
  keyFile: string,
): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  let output = ''
  const child = spawn(
    process.execPath,
    [
      berthBin,
      'keys',
      'rotate',
      '--database-url',
      databaseUrl,
      '--master-key-file',
      keyFile,
      '--batch-size',
      '1',
    ],
    // Without the test runner's BERTH_TEST_* (berth would read them as unknown settings).
    { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', HOME: tmpdir() } },
  )
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return { child, output: () => output, exit }
}

describe('berth keys rotate (postgres)', () => {
  let dir: string
  let keyFile: string
  let database: Database
  let created: Awaited<ReturnType<typeof createPostgresDatabase>>
  const samples: Array<{ place: SealedPlace; sealed: string; plain: string }> = []

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-keys-'))
    keyFile = join(dir, 'master.key')
    assert.equal(loadOrCreateKeyring(keyFile).created, true)
    assert.equal(statSync(keyFile).mode & 0o777, 0o600, 'readable by its owner only')
    created = await createPostgresDatabase()
    database = await openDatabase({ databaseUrl: created.url, dataDir: dir, maxConnections: 8 })
    await runMigrations(database)
    const vault = createVault(database.db, openMasterKeys({ masterKeyFile: keyFile }, dir, silent))
    // One data key per owner, each sealing one value.
    for (let start = 0; start < OWNERS; start += 100) {
      await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const place = { ownerId: randomUUID(), row: `deployment:${randomUUID()}`, field: 'env.PASSWORD' }
          const plain = `secret-${start + i}`
          samples.push({ place, sealed: await vault.seal(place, plain), plain })
        }),
      )
    }
  })
  after(async () => {
    await database.close()
    await created.drop()
    rmSync(dir, { recursive: true, force: true })
  })

  const openAll = async (vault: ReturnType<typeof createVault>) => {
    for (const s of samples) assert.equal(await vault.open(s.place, s.sealed), s.plain)
  }

  it('survives a kill in the middle, then finishes and retires the old key', async () => {
    const [oldKey] = readKeyringFile(keyFile).keys
    const first = rotate(created.url, keyFile)
    await waitFor(
      'some data keys re-wrapped',
      async () => new RegExp(`re-wrapped [1-9]\\d{2,} of ${OWNERS}`).test(first.output()),
      60_000,
      5,
    )
    first.child.kill('SIGKILL')
    await first.exit

    const midway = readKeyringFile(keyFile)
    assert.equal(midway.keys.length, 2, 'both keys stay in the file until the end')
    const byKey = await database.db.select({ id: ownerDataKeys.masterKeyId }).from(ownerDataKeys)
    const onNew = byKey.filter((r) => r.id === midway.current.id).length
    assert.ok(onNew > 0 && onNew < OWNERS, `part of the way: ${onNew} of ${OWNERS}`)
    await openAll(createVault(database.db, openMasterKeys({ masterKeyFile: keyFile }, dir, silent)))

    const second = rotate(created.url, keyFile)
    assert.equal(await second.exit, 0, second.output())
    assert.match(
      second.output(),
      new RegExp(`finished the rotation begun earlier: data keys wrapped by ${midway.current.id}`),
    )
    assert.match(second.output(), new RegExp(`retired ${oldKey!.id}`))

    const final = readKeyringFile(keyFile)
    assert.deepEqual(
      final.keys.map((k) => k.id),
      [midway.current.id],
    )
    assert.ok(!readFileSync(keyFile, 'utf8').includes(oldKey!.key.toString('base64')))
    const rows = await database.db.select({ id: ownerDataKeys.masterKeyId }).from(ownerDataKeys)
    assert.ok(rows.every((r) => r.id === final.current.id))
    await openAll(createVault(database.db, openMasterKeys({ masterKeyFile: keyFile }, dir, silent)))
    const withOldOnly = createVault(database.db, {
      current: () => keyringOf([oldKey!]),
      reload: () => keyringOf([oldKey!]),
    })
    await assert.rejects(withOldOnly.checkMasterKeys(), /which the master key file does not hold/)
  })

  it('starts a new rotation when the last one finished', async () => {
    const before = readKeyringFile(keyFile).current
    const run = rotate(created.url, keyFile)
    assert.equal(await run.exit, 0, run.output())
    assert.match(run.output(), /^rotated: data keys wrapped by v\d+-/m)
    const now = readKeyringFile(keyFile)
    assert.notEqual(now.current.id, before.id)
    assert.equal(now.keys.length, 1)
    await openAll(createVault(database.db, openMasterKeys({ masterKeyFile: keyFile }, dir, silent)))
  })

  it('runs two rotations asked at once one after the other, losing no key', async () => {
    const [a, b] = [rotate(created.url, keyFile), rotate(created.url, keyFile)]
    assert.equal(await a.exit, 0, a.output())
    assert.equal(await b.exit, 0, b.output())
    const ring = readKeyringFile(keyFile)
    assert.equal(ring.keys.length, 1)
    const rows = await database.db.select({ id: ownerDataKeys.masterKeyId }).from(ownerDataKeys)
    assert.ok(rows.every((r) => r.id === ring.current.id))
    await openAll(createVault(database.db, openMasterKeys({ masterKeyFile: keyFile }, dir, silent)))
  })
})
