import { createHmac, randomBytes } from 'node:crypto'
import { eq, sql } from 'drizzle-orm'
import type { Db, Tx } from '../db/client.ts'
import { ownerDataKeys, settings } from '../db/schema/index.ts'
import { decrypt, encrypt, SealError } from './envelope.ts'
import type { Keyring, MasterKey } from './keyring.ts'

// Envelope encryption of the secrets berth keeps. Each owner has one data key (random, 256 bits),
// stored only wrapped by the operator's master key; a secret is sealed with its owner's data key
// and bound (AAD) to its owner, row and field. A leaked database holds nothing readable without
// the master key file, and a sealed value copied to another row does not open there.

/** The owner of berth's own secrets (the session secret): the nil UUID, never an account's id. */
export const SYSTEM_OWNER = '00000000-0000-0000-0000-000000000000'

/** Taken shared to wrap a new data key and exclusively to change or retire master keys (rotate.ts). */
export const MASTER_KEY_LOCK = sql`hashtextextended('berth/master-keys', 0)`
/** The settings row naming the master key new data keys are wrapped with, for every replica. */
export const CURRENT_MASTER_KEY = 'master_key_id'

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
  /**
   * A keyed digest of `text` for the owner (HMAC under a key derived from its data key): what a
   * request is remembered by (idempotency) without a dump of the database confirming a guess.
   */
  fingerprint(ownerId: string, text: string): Promise<string>
  /**
   * Records the current master key for every replica on first start, and refuses to go on when
   * this process's key file lacks the one the database uses, or one that wraps a data key there.
   */
  checkMasterKeys(): Promise<void>
}

// The place is made of UUIDs, `deployment:<uuid>`-like row names and env variable names, none of
// which can hold a '/': the joined text names one place only.
const aadOf = (place: SealedPlace) => `berth/${place.ownerId}/${place.row}/${place.field}`
export const wrapAadOf = (ownerId: string) => `berth/data-key/${ownerId}`
/** Unwrapped data keys kept in memory; one per owner, so a few thousand cover the busy ones. */
const CACHE_MAX = 4096

export function unwrapDataKey(master: MasterKey, ownerId: string, wrapped: string): Buffer {
  return decrypt(master.key, wrapped, wrapAadOf(ownerId))
}

export function wrapDataKey(master: MasterKey, ownerId: string, dataKey: Buffer): string {
  return encrypt(master.key, dataKey, wrapAadOf(ownerId))
}

const missingKey = (id: string, what: string) =>
  new SealError(`${what} master key ${id}, which the master key file does not hold`)

export function createVault(db: Db, keys: KeySource): Vault {
  const cache = new Map<string, Buffer>()

  const masterKeyOf = (id: string) => keys.current().get(id) ?? keys.reload().get(id)

  async function readDataKey(ownerId: string, q: Db | Tx): Promise<Buffer | null> {
    const [row] = await q.select().from(ownerDataKeys).where(eq(ownerDataKeys.ownerId, ownerId))
    if (!row) return null
    const master = masterKeyOf(row.masterKeyId)
    if (!master) throw missingKey(row.masterKeyId, `the data key of owner ${ownerId} is wrapped by`)
    return unwrapDataKey(master, ownerId, row.wrappedKey)
  }

  async function createDataKey(ownerId: string, q: Db | Tx): Promise<void> {
    // Shared: many owners' first keys at once; a rotation changing the current key waits.
    await q.execute(sql`select pg_advisory_xact_lock_shared(${MASTER_KEY_LOCK})`)
    // The key every replica wraps with, as the database records it; the file read again, since a
    // rotation may have added that key after this process started.
    const [recorded] = await q.select().from(settings).where(eq(settings.key, CURRENT_MASTER_KEY))
    const master = recorded ? keys.reload().get(recorded.value) : keys.reload().current
    if (!master) throw missingKey(recorded!.value, 'the database wraps new data keys with')
    await q
      .insert(ownerDataKeys)
      .values({ ownerId, masterKeyId: master.id, wrappedKey: wrapDataKey(master, ownerId, randomBytes(32)) })
      .onConflictDoNothing({ target: ownerDataKeys.ownerId })
  }

  /**
   * The owner's data key, made on first use; concurrent first uses all end with the same one.
   * Only keys read outside a caller's transaction are cached: one read inside it may be its own
   * uncommitted row, which a rollback would take back.
   */
  async function dataKeyOf(ownerId: string, q: Db | Tx): Promise<Buffer> {
    const cached = cache.get(ownerId)
    if (cached) return cached
    let key = await readDataKey(ownerId, q)
    if (!key) {
      if (q === db) await db.transaction((tx) => createDataKey(ownerId, tx))
      else await createDataKey(ownerId, q)
      key = (await readDataKey(ownerId, q))!
    }
    if (q === db) {
      if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!)
      cache.set(ownerId, key)
    }
    return key
  }

  return {
    async seal(place, plaintext, q = db) {
      return encrypt(await dataKeyOf(place.ownerId, q), Buffer.from(plaintext, 'utf8'), aadOf(place))
    },

    async open(place, sealed, q = db) {
      return decrypt(await dataKeyOf(place.ownerId, q), sealed, aadOf(place)).toString('utf8')
    },

    async fingerprint(ownerId, text) {
      const key = createHmac('sha256', await dataKeyOf(ownerId, db))
        .update('berth/fingerprint')
        .digest()
      return createHmac('sha256', key).update(text).digest('hex')
    },

    async checkMasterKeys() {
      const ring = keys.reload()
      await db
        .insert(settings)
        .values({ key: CURRENT_MASTER_KEY, value: ring.current.id })
        .onConflictDoNothing({ target: settings.key })
      const [recorded] = await db.select().from(settings).where(eq(settings.key, CURRENT_MASTER_KEY))
      const used = await db.selectDistinct({ id: ownerDataKeys.masterKeyId }).from(ownerDataKeys)
      const missing = [...new Set([recorded!.value, ...used.map((u) => u.id)])].filter((id) => !ring.get(id))
      if (missing.length > 0) {
        throw new SealError(
          `this database's secrets are sealed under master key ${missing.join(', ')}, which the master key file does not hold: start with the file the other replicas use`,
        )
      }
    },
  }
}
