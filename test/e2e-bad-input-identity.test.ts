import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import {
  type BadInputFixture,
  type Case,
  invalid,
  MiB,
  runCases,
  startBadInputFixture,
} from './helpers/bad-input-fixture.ts'
import type { Body } from './helpers/raw-http.ts'
import { api } from './helpers/server.ts'

// Bad input against the real `berth serve`, on the identity routes: sign-in and API keys answer a
// 4xx with an error code and a message naming the field or the problem, write nothing, and keep
// serving. The deployment routes are in e2e-bad-input.test.ts.

let fixture: BadInputFixture

before(async () => {
  fixture = await startBadInputFixture()
})

after(async () => {
  await fixture?.stop()
})

function authCases(): Case[] {
  const p = '/v1/auth/verify'
  const sig = `0x${'ab'.repeat(65)}`
  return [
    invalid('verify malformed JSON', p, { raw: '{"message": "x",' }, /malformed JSON/i),
    invalid(
      'verify wrong types',
      p,
      { json: { message: 1, signature: 2 } },
      /message.*signature|signature.*message/,
    ),
    invalid('verify unknown field', p, { json: { message: 'x', signature: sig, chainId: 1 } }, /chainId/),
    invalid('verify missing signature', p, { json: { message: 'x' } }, /signature/),
    invalid('verify signature not hex', p, { json: { message: 'x', signature: 'zz' } }, /signature/),
    invalid('verify message not SIWE', p, { json: { message: 'let me in', signature: sig } }, /message/),
    invalid('verify message too long', p, { json: { message: 'x'.repeat(8193), signature: sig } }, /message/),
    {
      label: 'verify body over 1 MiB',
      method: 'POST',
      path: p,
      options: { json: { message: 'x'.repeat(MiB + 1), signature: sig } },
      status: 413,
      code: 'payload_too_large',
      mentions: /larger than/,
    },
  ]
}

function apiKeyCases(): Case[] {
  const p = '/v1/api-keys'
  return [
    invalid('key malformed JSON', p, { raw: '{"name":' }, /malformed JSON/i),
    invalid('key no content type', p, { raw: '{"name":"x"}', contentType: null }, /media type|content-type/i),
    invalid('key empty name', p, { json: { name: '' } }, /name/),
    invalid('key 65-character name', p, { json: { name: 'x'.repeat(65) } }, /name/),
    invalid('key name is a number', p, { json: { name: 42 } }, /name/),
    invalid('key name missing', p, { json: {} }, /name/),
    invalid('key unknown field', p, { json: { name: 'x', scope: 'admin' } }, /scope/),
    invalid('key name with NUL', p, { json: { name: 'a\u0000b' } }, /name: NUL/),
    invalid('key revoke malformed id', `${p}/not-a-uuid`, {}, /id/, 'DELETE'),
    {
      label: 'key revoke missing id',
      method: 'DELETE',
      path: `${p}/${randomUUID()}`,
      status: 404,
      code: 'not_found',
      mentions: /API key/,
    },
    {
      label: 'key body over 1 MiB',
      method: 'POST',
      path: p,
      options: { json: { name: 'x'.repeat(MiB + 1) } },
      status: 413,
      code: 'payload_too_large',
      mentions: /larger than/,
    },
    {
      label: 'key with an expired token',
      method: 'POST',
      path: p,
      options: { json: { name: 'sneaky' }, token: '(expired)' },
      status: 401,
      code: 'unauthorized',
      mentions: /expired/,
    },
  ]
}

describe('bad input (e2e)', () => {
  for (const [group, cases] of [
    ['POST /v1/auth/verify', authCases],
    ['/v1/api-keys', apiKeyCases],
  ] as const) {
    it(`${group}: each bad request gets a 4xx naming the problem, and nothing is written`, async () => {
      const before = await fixture.snapshot()
      assert.deepEqual(await runCases(fixture, cases()), [])
      assert.deepEqual(await fixture.snapshot(), before)
      const health = await api(fixture.berth.url).get<Body>('/health')
      assert.equal(health.status, 200)
    })
  }
})
