import { join } from 'node:path'
import type { Logger } from 'pino'
import { type Keyring, keyringOf, loadOrCreateKeyring, newMasterKey, readKeyringFile } from './keyring.ts'
import type { KeySource } from './vault.ts'

// Where the master keys come from: the operator's file (`masterKeyFile`), or one berth makes in
// its data dir on first start, for the embedded default. A data dir in memory (tests, demos) gets
// a key that lives as long as the process, like everything else there.

export function masterKeyPathOf(
  config: { masterKeyFile?: string | undefined },
  dataDir: string,
): string | null {
  if (config.masterKeyFile) return config.masterKeyFile
  return dataDir.startsWith('memory://') ? null : join(dataDir, 'master.key')
}

export function openMasterKeys(path: string | null, logger: Logger): KeySource {
  if (!path) {
    logger.warn('data dir in memory: secrets are sealed with a master key that dies with this process')
    return ephemeralKeys()
  }
  const { keyring, created } = loadOrCreateKeyring(path)
  if (created) {
    logger.warn(
      { masterKeyFile: path },
      `GENERATED A NEW MASTER KEY in ${path}: every secret berth keeps is sealed with it. Back this file up and keep it secret; without it those secrets are lost. Point other replicas at the same file (BERTH_MASTER_KEY_FILE).`,
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
