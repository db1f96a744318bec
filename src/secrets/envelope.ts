import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { BerthError } from '../domain/errors.ts'

// AES-256-GCM with a fresh 96-bit nonce per value and additional authenticated data (AAD) that
// names where the value belongs. GCM authenticates the ciphertext and the AAD together: a value
// changed by one bit, or copied to another owner, row or field, does not decrypt.

const ALGORITHM = 'aes-256-gcm'
const NONCE_BYTES = 12
const TAG_BYTES = 16
/** Marks a sealed value (format version 1): `berth:v1:<nonce>.<ciphertext>.<tag>`, base64url. */
export const SEALED_PREFIX = 'berth:v1:'

export class SealError extends BerthError {
  constructor(message: string, cause?: unknown) {
    super('internal', message, { cause })
    this.name = 'SealError'
  }
}

export const isSealed = (value: string) => value.startsWith(SEALED_PREFIX)

export function encrypt(key: Buffer, plaintext: Buffer, aad: string): string {
  const nonce = randomBytes(NONCE_BYTES)
  const cipher = createCipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES })
  cipher.setAAD(Buffer.from(aad, 'utf8'))
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return `${SEALED_PREFIX}${[nonce, ciphertext, cipher.getAuthTag()].map((b) => b.toString('base64url')).join('.')}`
}

export function decrypt(key: Buffer, sealed: string, aad: string): Buffer {
  if (!isSealed(sealed)) throw new SealError('not a sealed value')
  const parts = sealed.slice(SEALED_PREFIX.length).split('.')
  if (parts.length !== 3) throw new SealError('a sealed value has three parts')
  const [nonce, ciphertext, tag] = parts.map((p) => Buffer.from(p, 'base64url')) as [Buffer, Buffer, Buffer]
  if (nonce.length !== NONCE_BYTES || tag.length !== TAG_BYTES)
    throw new SealError('a sealed value is malformed')
  try {
    const decipher = createDecipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES })
    decipher.setAAD(Buffer.from(aad, 'utf8'))
    decipher.setAuthTag(tag)
    return Buffer.concat([decipher.update(ciphertext), decipher.final()])
  } catch (error) {
    // The one message for every failure: which part was wrong is nobody's business.
    throw new SealError(
      'a sealed value does not open here (wrong key, owner, row or field, or altered)',
      error,
    )
  }
}
