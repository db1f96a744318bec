import { createHash, randomBytes } from 'node:crypto'
import {
  chownSync,
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs'
import { dirname } from 'node:path'
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

const fingerprintOf = (key: Buffer) => createHash('sha256').update(key).digest('hex').slice(0, 8)

export function newMasterKey(version: number): MasterKey {
  const key = randomBytes(32)
  return { id: `v${version}-${fingerprintOf(key)}`, key }
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
    if (!key.id.endsWith(`-${fingerprintOf(key.key)}`)) {
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

/**
 * Writes `keys` to a new file next to `path`, readable by its owner only and flushed to the disk,
 * and returns its name. Made with `wx`: it never reuses (or follows) a file already there.
 */
function writeTemporary(path: string, keys: MasterKey[]): string {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`
  const fd = openSync(temporary, 'wx', 0o600)
  try {
    writeSync(fd, formatKeyring(keys))
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  return temporary
}

/** Flushes a directory's entries, so a rename in it survives a power loss. */
function syncDirectory(path: string): void {
  const fd = openSync(dirname(path), 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/**
 * Replaces the file whole or not at all (a flushed temporary file renamed over it), keeping its
 * owner and group, so servers running as another user can still read it after a rotation.
 */
export function writeKeyringFile(path: string, keys: MasterKey[]): void {
  const temporary = writeTemporary(path, keys)
  try {
    if (existsSync(path)) {
      const { uid, gid } = statSync(path)
      chownSync(temporary, uid, gid)
    }
    renameSync(temporary, path)
    syncDirectory(path)
  } finally {
    rmSync(temporary, { force: true })
  }
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
  const temporary = writeTemporary(path, [key])
  try {
    linkSync(temporary, path)
    syncDirectory(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    return { keyring: readKeyringFile(path), created: false }
  } finally {
    rmSync(temporary, { force: true })
  }
  return { keyring: keyringOf([key]), created: true }
}
