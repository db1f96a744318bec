import { and, count, eq, inArray, ne, sql } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { ownerDataKeys } from '../db/schema/index.ts'
import { invalidInput } from '../domain/errors.ts'
import { decrypt, encrypt } from './envelope.ts'
import {
  type Keyring,
  keyringOf,
  newMasterKey,
  readKeyringFile,
  versionOf,
  writeKeyringFile,
} from './keyring.ts'
import { MASTER_KEY_LOCK, wrapAadOf } from './vault.ts'

// Master key rotation: a new key is added to the file as the current one, every data key is
// re-wrapped with it a batch at a time (each batch its own transaction), and once none is wrapped
// by an older key, the older keys leave the file. Sealed values are never touched: they depend on
// the data keys only. Resumable: the file keeps every key until the end, so a rotation stopped
// anywhere leaves every data key readable, and the next run finishes the one begun (it sees data
// keys not yet under the current key) instead of starting another.

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

const notCurrent = (ring: Keyring) => ne(ownerDataKeys.masterKeyId, ring.current.id)

async function pendingCount(db: Db, ring: Keyring): Promise<number> {
  const [row] = await db.select({ n: count() }).from(ownerDataKeys).where(notCurrent(ring))
  return row!.n
}

export async function rotateMasterKey(
  db: Db,
  path: string,
  options: RotationOptions = {},
): Promise<RotationReport> {
  const batchSize = options.batchSize ?? 500
  let ring = readKeyringFile(path)
  const resumed = (await pendingCount(db, ring)) > 0
  if (!resumed) {
    ring = keyringOf([...ring.keys, newMasterKey(versionOf(ring.current) + 1)])
    writeKeyringFile(path, ring.keys)
  }
  const total = await pendingCount(db, ring)
  let rewrapped = 0
  for (;;) {
    const moved = await db.transaction(async (tx) => {
      const rows = await tx
        .select()
        .from(ownerDataKeys)
        .where(notCurrent(ring))
        .orderBy(ownerDataKeys.ownerId)
        .limit(batchSize)
        .for('update', { skipLocked: true })
      for (const row of rows) {
        const old = ring.get(row.masterKeyId)
        if (!old) {
          throw invalidInput(
            `the data key of owner ${row.ownerId} is wrapped by master key ${row.masterKeyId}, which ${path} does not hold`,
          )
        }
        const dataKey = decrypt(old.key, row.wrappedKey, wrapAadOf(row.ownerId))
        await tx
          .update(ownerDataKeys)
          .set({
            masterKeyId: ring.current.id,
            wrappedKey: encrypt(ring.current.key, dataKey, wrapAadOf(row.ownerId)),
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
  const retired = await retireOldKeys(db, path, ring)
  return { current: ring.current.id, retired, rewrapped, resumed }
}

/**
 * Drops the keys no data key uses any more from the file. Under the lock servers take (shared) to
 * wrap a new data key, so none is wrapped by a key between this check and the file's rewrite.
 */
async function retireOldKeys(db: Db, path: string, ring: Keyring): Promise<string[]> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${MASTER_KEY_LOCK})`)
    const old = ring.keys.filter((k) => k.id !== ring.current.id).map((k) => k.id)
    if (old.length === 0) return []
    const used = await tx
      .selectDistinct({ id: ownerDataKeys.masterKeyId })
      .from(ownerDataKeys)
      .where(inArray(ownerDataKeys.masterKeyId, old))
    const keep = new Set(used.map((u) => u.id))
    const retired = old.filter((id) => !keep.has(id))
    writeKeyringFile(
      path,
      ring.keys.filter((k) => !retired.includes(k.id)),
    )
    return retired
  })
}
