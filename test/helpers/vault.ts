import type { Db } from '../../src/db/client.ts'
import { ephemeralKeys } from '../../src/secrets/master-keys.ts'
import { createVault, type Vault } from '../../src/secrets/vault.ts'

const vaults = new WeakMap<Db, Vault>()

/**
 * The vault of a test database: its master key lives in this test process only, and every caller
 * on the same database gets the same vault (as every part of one server does).
 */
export function testVault(db: Db): Vault {
  let vault = vaults.get(db)
  if (!vault) {
    vault = createVault(db, ephemeralKeys())
    vaults.set(db, vault)
  }
  return vault
}
