import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, existsSync, linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { invalidInput } from '../domain/errors.ts'

// The operator's master keys, in one file: one key per line, `<id> <base64 of 32 bytes>`, the last
// line the current key (the one new data keys are wrapped with); `#` starts a comment. An id is
// `v<version>-<fingerprint>`: the version orders keys, and the fingerprint (from the key itself)
// tells two independently generated files apart, so a replica started with the wrong file is
// refused instead of sealing with a key the others do not have.

export interface MasterKey {
  id: string
  key: Buffer
}

export interface Keyring {
  /** Wraps new data keys. */
  current: MasterKey
  keys: MasterKey[]
  get(id: string): MasterKey | undefined
}

const LINE = /^(v(\d+)-[0-9a-f]{8})\s+([A-Za-z0-9+/]{43}=)$/

export const versionOf = (key: MasterKey) => Number(key.id.slice(1, key.id.indexOf('-')))

export function keyringOf(keys: MasterKey[]): Keyring {
  if (keys.length === 0) throw invalidInput('the master key file holds no key')
  const byId = new Map(keys.map((k) => [k.id, k]))
  return { current: keys.at(-1)!, keys, get: (id) => byId.get(id) }
}

export function newMasterKey(version: number): MasterKey {
  const key = randomBytes(32)
  const fingerprint = createHash('sha256').update(key).digest('hex').slice(0, 8)
  return { id: `v${version}-${fingerprint}`, key }
}

export function parseKeyring(text: string, source: string): Keyring {
  const keys: MasterKey[] = []
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const match = LINE.exec(line)
    if (!match) {
      throw invalidInput(
        `${source}: line ${index + 1} is not "<id> <base64 key>" (a 32-byte key, id v<N>-<8 hex>)`,
      )
    }
    const key = { id: match[1]!, key: Buffer.from(match[3]!, 'base64') }
    const fingerprint = createHash('sha256').update(key.key).digest('hex').slice(0, 8)
    if (!key.id.endsWith(`-${fingerprint}`)) {
      throw invalidInput(`${source}: line ${index + 1}: the id does not match its key (a damaged copy?)`)
    }
    keys.push(key)
  }
  for (const [i, key] of keys.entries()) {
    if (i > 0 && versionOf(key) <= versionOf(keys[i - 1]!)) {
      throw invalidInput(`${source}: key versions must increase line by line (the last is the current key)`)
    }
  }
  return keyringOf(keys)
}

export function formatKeyring(keys: MasterKey[]): string {
  return [
    '# berth master keys: the last line is the current key. Keep this file secret and backed up:',
    '# without it, no secret berth keeps can be read.',
    ...keys.map((k) => `${k.id} ${k.key.toString('base64')}`),
    '',
  ].join('\n')
}

/** Writes the file whole or not at all (a temporary file renamed over it), readable by its owner only. */
export function writeKeyringFile(path: string, keys: MasterKey[]): void {
  const temporary = `${path}.${process.pid}.tmp`
  writeFileSync(temporary, formatKeyring(keys), { mode: 0o600 })
  chmodSync(temporary, 0o600)
  renameSync(temporary, path)
}

export function readKeyringFile(path: string): Keyring {
  return parseKeyring(readFileSync(path, 'utf8'), path)
}

/**
 * The keyring in `path`, made with one new key first when the file does not exist. The new file is
 * linked into place, which fails when another process made one meanwhile: that one is then used.
 */
export function loadOrCreateKeyring(path: string): { keyring: Keyring; created: boolean } {
  if (existsSync(path)) return { keyring: readKeyringFile(path), created: false }
  const key = newMasterKey(1)
  const temporary = `${path}.${process.pid}.new`
  writeFileSync(temporary, formatKeyring([key]), { mode: 0o600 })
  try {
    linkSync(temporary, path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    return { keyring: readKeyringFile(path), created: false }
  } finally {
    rmSync(temporary, { force: true })
  }
  return { keyring: keyringOf([key]), created: true }
}
