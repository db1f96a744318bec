import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { decrypt, encrypt, SealError } from './envelope.ts'
import { formatKeyring, newMasterKey, parseKeyring } from './keyring.ts'

describe('envelope', () => {
  const key = randomBytes(32)

  it('opens what it sealed, and never shows the plaintext', () => {
    const sealed = encrypt(key, Buffer.from('hunter2-canary'), 'berth/a/deployment:1/env.X')
    assert.match(sealed, /^berth:v1:[\w-]+\.[\w-]+\.[\w-]+$/)
    assert.ok(!sealed.includes('hunter2'))
    assert.equal(decrypt(key, sealed, 'berth/a/deployment:1/env.X').toString(), 'hunter2-canary')
    assert.notEqual(
      encrypt(key, Buffer.from('same'), 'x'),
      encrypt(key, Buffer.from('same'), 'x'),
      'a fresh nonce',
    )
  })

  it('refuses another place, another key, or one changed bit', () => {
    const sealed = encrypt(key, Buffer.from('secret'), 'berth/a/deployment:1/env.X')
    const refuses = (fn: () => unknown) => assert.throws(fn, SealError)
    refuses(() => decrypt(key, sealed, 'berth/a/deployment:2/env.X'))
    refuses(() => decrypt(key, sealed, 'berth/b/deployment:1/env.X'))
    refuses(() => decrypt(randomBytes(32), sealed, 'berth/a/deployment:1/env.X'))
    const [prefix, body] = [sealed.slice(0, 9), sealed.slice(9)]
    const bytes = Buffer.from(body.split('.')[1]!, 'base64url')
    bytes[0]! ^= 1
    const flipped = `${prefix}${[body.split('.')[0], bytes.toString('base64url'), body.split('.')[2]].join('.')}`
    refuses(() => decrypt(key, flipped, 'berth/a/deployment:1/env.X'))
    refuses(() => decrypt(key, 'plain text', 'x'))
  })
})

describe('master key file', () => {
  it('reads back what it writes, the last key current', () => {
    const keys = [newMasterKey(1), newMasterKey(2)]
    const ring = parseKeyring(formatKeyring(keys), 'test')
    assert.equal(ring.current.id, keys[1]!.id)
    assert.deepEqual(ring.get(keys[0]!.id)?.key, keys[0]!.key)
    assert.match(keys[0]!.id, /^v1-[0-9a-f]{8}$/)
  })

  it('refuses a damaged file, naming the line', () => {
    const [one, two] = [newMasterKey(1), newMasterKey(2)]
    const line = (k: typeof one) => `${k.id} ${k.key.toString('base64')}`
    assert.throws(() => parseKeyring('', 'f'), /holds no key/)
    assert.throws(() => parseKeyring(`${line(one)}\nnot a key`, 'f'), /f: line 2 is not/)
    assert.throws(
      () => parseKeyring(`${one.id} ${two.key.toString('base64')}`, 'f'),
      /does not match its key/,
    )
    assert.throws(() => parseKeyring(`${line(two)}\n${line(one)}`, 'f'), /versions must increase/)
  })
})
