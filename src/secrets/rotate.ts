import { and, count, eq, inArray, ne, sql } from 'drizzle-orm'
import type { Database, Db } from '../db/client.ts'
import { ownerDataKeys, settings } from '../db/schema/index.ts'
import { invalidInput } from '../domain/errors.ts'
import {
  type Keyring,
  keyringOf,
  newMasterKey,
  readKeyringFile,
  versionOf,
  writeKeyringFile,
} from './keyring.ts'
import { CURRENT_MASTER_KEY, MASTER_KEY_LOCK, unwrapDataKey, wrapDataKey } from './vault.ts'

// Master key rotation: a new key is added to the file as the current one (and recorded in the
// database as the key every replica wraps new data keys with), every data key is re-wrapped with
// it a batch at a time (each batch its own transaction), and once none is wrapped by an older key,
// the older keys leave the file. Sealed values are never touched: they depend on the data keys
// only. Resumable: the file keeps every key until the end, so a rotation stopped anywhere leaves
// every data key readable, and a file holding more than one key is a rotation begun, which the
// next run finishes instead of starting another.

/** One rotation at a time, whoever runs it (a session lock, held for the whole run). */
const ROTATION_LOCK_KEY = 727_002

export interface RotationReport {
  /** The key the data keys are wrapped by now. */
  current: string
  /** Keys that left the file. */
  retired: string[]
  rewrapped: number
  /** True when this run finished a rotation an earlier run began. */
  resumed: boolean
}

export interface RotationOptions {
  batchSize?: number
  onProgress?: (done: number, total: number) => void
}

async function pendingCount(db: Db, ring: Keyring): Promise<number> {
  const [row] = await db
    .select({ n: count() })
    .from(ownerDataKeys)
    .where(ne(ownerDataKeys.masterKeyId, ring.current.id))
  return row!.n
}

export function rotateMasterKey(
  database: Database,
  path: string,
  options: RotationOptions = {},
): Promise<RotationReport> {
  return database.withAdvisoryLock(ROTATION_LOCK_KEY, () => rotate(database.db, path, options))
}

async function rotate(db: Db, path: string, options: RotationOptions): Promise<RotationReport> {
  // Read under the lock: an earlier run may have changed the file until a moment ago.
  let ring = readKeyringFile(path)
  const resumed = ring.keys.length > 1 || (await pendingCount(db, ring)) > 0
  if (!resumed) ring = keyringOf([...ring.keys, newMasterKey(versionOf(ring.current) + 1)])
  await db.transaction(async (tx) => {
    // Servers wrapping a new data key hold this shared: none is mid-way while the key changes.
    await tx.execute(sql`select pg_advisory_xact_lock(${MASTER_KEY_LOCK})`)
    if (!resumed) writeKeyringFile(path, ring.keys)
    await tx
      .insert(settings)
      .values({ key: CURRENT_MASTER_KEY, value: ring.current.id })
      .onConflictDoUpdate({ target: settings.key, set: { value: ring.current.id } })
  })

  const total = await pendingCount(db, ring)
  let rewrapped = 0
  for (;;) {
    const moved = await db.transaction(async (tx) => {
      const rows = await tx
        .select()
        .from(ownerDataKeys)
        .where(ne(ownerDataKeys.masterKeyId, ring.current.id))
        .orderBy(ownerDataKeys.ownerId)
        .limit(options.batchSize ?? 500)
        .for('update', { skipLocked: true })
      for (const row of rows) {
        const old = ring.get(row.masterKeyId)
        if (!old) {
          throw invalidInput(
            `the data key of owner ${row.ownerId} is wrapped by master key ${row.masterKeyId}, which ${path} does not hold`,
          )
        }
        const dataKey = unwrapDataKey(old, row.ownerId, row.wrappedKey)
        await tx
          .update(ownerDataKeys)
          .set({
            masterKeyId: ring.current.id,
            wrappedKey: wrapDataKey(ring.current, row.ownerId, dataKey),
            rewrappedAt: new Date(),
          })
          .where(and(eq(ownerDataKeys.ownerId, row.ownerId), eq(ownerDataKeys.masterKeyId, row.masterKeyId)))
      }
      return rows.length
    })
    if (moved === 0) break
    rewrapped += moved
    options.onProgress?.(rewrapped, total)
  }
  const retired = await retireOldKeys(db, path)
  return { current: ring.current.id, retired, rewrapped, resumed }
}

/**
 * Drops the keys no data key uses any more from the file, under the lock servers take (shared) to
 * wrap a new data key, so none is wrapped by a key between this check and the file's rewrite.
 * A key still in use (a data key locked by someone else while the batches ran) is refused loudly.
 */
async function retireOldKeys(db: Db, path: string): Promise<string[]> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${MASTER_KEY_LOCK})`)
    const ring = readKeyringFile(path)
    const old = ring.keys.filter((k) => k.id !== ring.current.id).map((k) => k.id)
    if (old.length === 0) return []
    const used = await tx
      .selectDistinct({ id: ownerDataKeys.masterKeyId })
      .from(ownerDataKeys)
      .where(inArray(ownerDataKeys.masterKeyId, old))
    if (used.length > 0) {
      throw invalidInput(
        `data keys are still wrapped by ${used.map((u) => u.id).join(', ')}: run berth keys rotate again to finish`,
      )
    }
    writeKeyringFile(path, [ring.current])
    return old
  })
}
