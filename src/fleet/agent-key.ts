import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto'

// The fleet agent's own key: Ed25519, because the control plane verifies a signature on every
// heartbeat (thousands a second) and an Ed25519 check costs a fraction of a wallet signature's
// recovery. The wallet signs once, at enrollment, to vouch for this key.

/** A raw Ed25519 public key is 32 bytes: 43 base64url characters. */
export const PUBLIC_KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/

export interface AgentKeyPair {
  privateKey: KeyObject
  /** The raw 32-byte public key, base64url: how enrollment and the node's row name it. */
  publicKey: string
}

export function generateAgentKey(): AgentKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { privateKey, publicKey: rawPublicKeyOf(publicKey) }
}

/** The key pair from its PKCS#8 PEM form (what the agent keeps in its data dir). */
export function agentKeyFromPem(pem: string): AgentKeyPair {
  const privateKey = createPrivateKey(pem)
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('the agent key is not an Ed25519 key')
  return { privateKey, publicKey: rawPublicKeyOf(createPublicKey(privateKey)) }
}

export const pemOf = (key: AgentKeyPair) => key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string

function rawPublicKeyOf(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' })
  return jwk.x!
}

/** The public key object for a raw base64url key, to verify with. */
export function publicKeyObjectOf(raw: string): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw }, format: 'jwk' })
}

export const signWithAgentKey = (key: AgentKeyPair, data: Buffer | string): string =>
  sign(null, Buffer.from(data), key.privateKey).toString('base64')

/** Whether `signature` (base64) signs `data` with this key; a malformed signature is just invalid. */
export function agentSignatureValid(key: KeyObject, data: Buffer | string, signature: string): boolean {
  const bytes = Buffer.from(signature, 'base64')
  if (bytes.length !== 64) return false
  try {
    return verify(null, Buffer.from(data), key, bytes)
  } catch {
    return false
  }
}
