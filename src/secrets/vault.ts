import { randomBytes } from 'node:crypto'
import { eq, sql } from 'drizzle-orm'
import type { Db, Tx } from '../db/client.ts'
import { ownerDataKeys } from '../db/schema/index.ts'
import { decrypt, encrypt, SealError } from './envelope.ts'
import type { Keyring } from './keyring.ts'

// Envelope encryption of the secrets berth keeps. Each owner has one data key (random, 256 bits),
// stored only wrapped by the operator's master key; a secret is sealed with its owner's data key
// and bound (AAD) to its owner, row and field. A leaked database holds nothing readable without
// the master key file, and a sealed value copied to another row does not open there.

/** The owner of berth's own secrets (the session secret): the nil UUID, never an account's id. */
export const SYSTEM_OWNER = '00000000-0000-0000-0000-000000000000'

/** Taken shared to wrap a new data key and exclusively to retire a master key (keys-rotate.ts). */
export const MASTER_KEY_LOCK = sql`hashtextextended('berth/master-keys', 0)`

/** Where a sealed value belongs: its AAD. `row` names the row (`deployment:<id>`), `field` the value. */
export interface SealedPlace {
  ownerId: string
  row: string
  field: string
}

/** The master keys as the process knows them, and a way to read them again (after a rotation). */
export interface KeySource {
  current(): Keyring
  reload(): Keyring
}

export interface Vault {
  /** `db`: a caller's open transaction, for an owner that may be new in it (an NFT's next holder). */
  seal(place: SealedPlace, plaintext: string, db?: Db | Tx): Promise<string>
  open(place: SealedPlace, sealed: string, db?: Db | Tx): Promise<string>
  /** Refuses to go on when a data key is wrapped by a master key the key source does not hold. */
  checkMasterKeys(): Promise<void>
}

const aadOf = (place: SealedPlace) => `berth/${place.ownerId}/${place.row}/${place.field}`
export const wrapAadOf = (ownerId: string) => `berth/data-key/${ownerId}`
/** Unwrapped data keys kept in memory; one per owner, so a few thousand cover the busy ones. */
const CACHE_MAX = 4096

export function createVault(db: Db, keys: KeySource): Vault {
  const cache = new Map<string, Buffer>()

  function unwrap(ownerId: string, masterKeyId: string, wrapped: string): Buffer {
    const master = keys.current().get(masterKeyId) ?? keys.reload().get(masterKeyId)
    if (!master) {
      throw new SealError(
        `the data key of owner ${ownerId} is wrapped by master key ${masterKeyId}, which the master key file does not hold`,
      )
    }
    return decrypt(master.key, wrapped, wrapAadOf(ownerId))
  }

  async function readDataKey(ownerId: string, q: Db | Tx): Promise<Buffer | null> {
    const [row] = await q.select().from(ownerDataKeys).where(eq(ownerDataKeys.ownerId, ownerId))
    return row ? unwrap(ownerId, row.masterKeyId, row.wrappedKey) : null
  }

  async function createDataKey(ownerId: string, q: Db | Tx): Promise<void> {
    // Shared: many owners' first keys at once; a rotation retiring a master key waits.
    await q.execute(sql`select pg_advisory_xact_lock_shared(${MASTER_KEY_LOCK})`)
    // Read again under the lock: a rotation may have made a new current key meanwhile.
    const master = keys.reload().current
    await q
      .insert(ownerDataKeys)
      .values({
        ownerId,
        masterKeyId: master.id,
        wrappedKey: encrypt(master.key, randomBytes(32), wrapAadOf(ownerId)),
      })
      .onConflictDoNothing({ target: ownerDataKeys.ownerId })
  }

  /**
   * The owner's data key, made on first use; concurrent first uses all end with the same one. Made
   * in a caller's transaction, it is not cached: the transaction may still roll back.
   */
  async function dataKeyOf(ownerId: string, q: Db | Tx): Promise<Buffer> {
    const cached = cache.get(ownerId)
    if (cached) return cached
    let key = await readDataKey(ownerId, q)
    if (!key) {
      if (q === db) await db.transaction((tx) => createDataKey(ownerId, tx))
      else await createDataKey(ownerId, q)
      key = (await readDataKey(ownerId, q))!
      if (q !== db) return key
    }
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!)
    cache.set(ownerId, key)
    return key
  }

  return {
    async seal(place, plaintext, q = db) {
      return encrypt(await dataKeyOf(place.ownerId, q), Buffer.from(plaintext, 'utf8'), aadOf(place))
    },

    async open(place, sealed, q = db) {
      return decrypt(await dataKeyOf(place.ownerId, q), sealed, aadOf(place)).toString('utf8')
    },

    async checkMasterKeys() {
      const used = await db.selectDistinct({ id: ownerDataKeys.masterKeyId }).from(ownerDataKeys)
      const ring = keys.reload()
      const missing = used.map((u) => u.id).filter((id) => !ring.get(id))
      if (missing.length > 0) {
        throw new SealError(
          `this database's secrets are sealed under master key ${missing.join(', ')}, which the master key file does not hold: start with the file the other replicas use`,
        )
      }
    },
  }
}
