import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { checksumAddress } from 'viem'
import { createSiweMessage } from 'viem/siwe'
import { BerthError } from '../domain/errors.ts'
import { parseSiweMessage } from './siwe-message.ts'

const ADDRESS = checksumAddress('0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed')
const isChecksummed = (a: string) => checksumAddress(a as `0x${string}`) === a
const parse = (text: string) => parseSiweMessage(text, isChecksummed)

const base = {
  domain: 'localhost:8080',
  address: ADDRESS,
  chainId: 1,
  nonce: 'abcdef1234',
  uri: 'http://localhost:8080',
  version: '1' as const,
  issuedAt: new Date('2030-01-01T00:00:00Z'),
}
const good = createSiweMessage({
  ...base,
  statement: 'Sign in to berth',
  expirationTime: new Date('2030-01-01T01:00:00Z'),
  notBefore: new Date('2030-01-01T00:00:00Z'),
  requestId: 'r-1',
  resources: ['https://a.example/x', 'ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'],
})

function refused(text: string, reason: RegExp) {
  assert.throws(
    () => parse(text),
    (error: unknown) => {
      assert.ok(error instanceof BerthError)
      assert.equal(error.code, 'invalid_input')
      assert.match(error.message, reason)
      return true
    },
    text,
  )
}

describe('EIP-4361 messages', () => {
  it('reads every field of a well-formed message, with and without the optional ones', () => {
    assert.deepEqual(parse(good), {
      ...base,
      statement: 'Sign in to berth',
      expirationTime: new Date('2030-01-01T01:00:00Z'),
      notBefore: new Date('2030-01-01T00:00:00Z'),
      requestId: 'r-1',
      resources: [
        'https://a.example/x',
        'ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi',
      ],
    })
    assert.deepEqual(parse(createSiweMessage(base)), base)
    assert.equal(parse(createSiweMessage({ ...base, scheme: 'https' })).scheme, 'https')
  })

  it('refuses what the grammar does not allow', () => {
    refused(good.replace(ADDRESS, ADDRESS.toLowerCase()), /not EIP-55 checksummed/)
    refused(good.replace('Sign in to berth', 'Sign in\nto berth'), /empty line must come before/)
    refused(good.replace('Sign in to berth', 'Sign "in" to berth'), /statement/)
    refused(good.replace('Sign in to berth', 'Anmelden bei Bärth'), /statement/)
    refused(good.replaceAll('\n', '\r\n'), /./)
    refused(good.replace('URI: http://localhost:8080', 'URI: not a uri'), /URI is not an RFC 3986 URI/)
    refused(good.replace('URI: http://localhost:8080', 'URI: http://local host'), /URI/)
    refused(good.replace('Issued At: 2030-01-01T00:00:00.000Z', 'Issued At: 1 Jan 2030'), /Issued At/)
    refused(
      good.replace('Issued At: 2030-01-01T00:00:00.000Z', 'Issued At: 2030-13-45T00:00:00Z'),
      /Issued At/,
    )
    refused(good.replace('Version: 1', 'Version: 2'), /Version/)
    refused(good.replace('Chain ID: 1', 'Chain ID: 01'), /Chain ID/)
    refused(good.replace('Nonce: abcdef1234', 'Nonce: short'), /Nonce/)
    refused(good.replace('- https://a.example/x', '- not a uri'), /resource/)
    refused(`${good}\n`, /resource/)
    refused(createSiweMessage(base).replace('Issued At', 'Issued-At'), /Issued At/)
    // Fields out of their order.
    const swapped = good.replace(
      'Expiration Time: 2030-01-01T01:00:00.000Z\nNot Before: 2030-01-01T00:00:00.000Z',
      'Not Before: 2030-01-01T00:00:00.000Z\nExpiration Time: 2030-01-01T01:00:00.000Z',
    )
    refused(swapped, /unexpected line/)
    refused(`${createSiweMessage(base)}\nPS: also this`, /unexpected line/)
    refused('let me in', /first line/)
  })
})
