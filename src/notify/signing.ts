import { createHmac, randomBytes } from 'node:crypto'

// Signing per the Standard Webhooks specification: the signed content is `id.timestamp.body`,
// the key is the secret's bytes (base64 after `whsec_`), the signature `v1,<base64 HMAC-SHA256>`.
// During a rotation the header carries one signature per valid secret, space-separated, so a
// receiver holding either secret accepts the message.

const PREFIX = 'whsec_'

/** A new signing secret: 32 random bytes, as the specification's `whsec_` form. */
export function newSigningSecret(): string {
  return `${PREFIX}${randomBytes(32).toString('base64')}`
}

export function isSigningSecret(text: string): boolean {
  if (!text.startsWith(PREFIX)) return false
  const key = Buffer.from(text.slice(PREFIX.length), 'base64')
  return key.length >= 16 && key.toString('base64') === text.slice(PREFIX.length)
}

export function signature(secret: string, id: string, timestampSeconds: number, body: string): string {
  const key = Buffer.from(secret.slice(PREFIX.length), 'base64')
  const digest = createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64')
  return `v1,${digest}`
}

/** The `webhook-signature` header: a signature by each secret still valid. */
export function signatureHeader(
  secrets: readonly string[],
  id: string,
  timestampSeconds: number,
  body: string,
): string {
  return secrets.map((s) => signature(s, id, timestampSeconds, body)).join(' ')
}
