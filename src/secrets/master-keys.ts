import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { invalidInput } from '../domain/errors.ts'
import { type Keyring, keyringOf, loadOrCreateKeyring, newMasterKey, readKeyringFile } from './keyring.ts'
import type { KeySource } from './vault.ts'

// Where the master keys come from: the operator's file (`masterKeyFile`), or one berth makes in
// its data dir on first start, for the embedded default. A configured file that is missing is an
// error, never a reason to make a new key (a missing mount would otherwise split the replicas).
// A data dir in memory (tests, demos) gets a key that lives as long as the process.

export function masterKeyPathOf(
  config: { masterKeyFile?: string | undefined },
  dataDir: string,
): string | null {
  if (config.masterKeyFile) return config.masterKeyFile
  return dataDir.startsWith('memory://') ? null : join(dataDir, 'master.key')
}

export function openMasterKeys(
  config: { masterKeyFile?: string | undefined },
  dataDir: string,
  logger: Logger,
): KeySource {
  const path = masterKeyPathOf(config, dataDir)
  if (!path) {
    logger.warn('data dir in memory: secrets are sealed with a master key that dies with this process')
    return ephemeralKeys()
  }
  if (config.masterKeyFile && !existsSync(path)) {
    throw invalidInput(`invalid configuration: masterKeyFile: ${path} does not exist`)
  }
  const { keyring, created } = loadOrCreateKeyring(path)
  if (created) {
    logger.warn(
      { masterKeyFile: path },
      `GENERATED A NEW MASTER KEY in ${path}: every secret berth keeps is sealed with it. Back this file up, apart from the database, and keep it secret; without it those secrets are lost. Point other replicas at the same file (BERTH_MASTER_KEY_FILE).`,
    )
  } else if ((statSync(path).mode & 0o077) !== 0) {
    logger.warn(
      { masterKeyFile: path },
      `the master key file ${path} is readable by others than its owner: chmod 600 it`,
    )
  }
  let known: Keyring = keyring
  return {
    current: () => known,
    reload: () => {
      known = readKeyringFile(path)
      return known
    },
  }
}

/** One new master key held in memory only: for a database that lives no longer than the process. */
export function ephemeralKeys(): KeySource {
  const keyring = keyringOf([newMasterKey(1)])
  return { current: () => keyring, reload: () => keyring }
}
