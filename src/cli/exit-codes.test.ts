import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CommanderError } from 'commander'
import { ApiError, ConnectionError, toApiError } from '../client/http-client.ts'
import { BerthError, errorCodes } from '../domain/errors.ts'
import { exitCodeOf, exitCodes } from './exit-codes.ts'

describe('exit codes', () => {
  it('maps every error code the server can send', () => {
    const expected: Record<string, number> = {
      invalid_input: 2,
      payload_too_large: 2,
      unauthorized: 4,
      forbidden: 4,
      not_found: 3,
      conflict: 3,
      rate_limited: 1,
      quota_exceeded: 4,
      provider_unavailable: 1,
      provider_rejected: 2,
      unreachable: 1,
      internal: 1,
    }
    for (const code of errorCodes) {
      assert.equal(exitCodeOf(new BerthError(code, 'x')), expected[code], code)
    }
  })

  it('maps API errors by their code, and unknown codes by HTTP status', async () => {
    const response = (status: number, body: unknown) =>
      new Response(typeof body === 'string' ? body : JSON.stringify(body), { status })
    const notFound = await toApiError(
      response(404, { error: { code: 'not_found', message: 'deployment x not found', requestId: 'r1' } }),
    )
    assert.ok(notFound instanceof ApiError)
    assert.equal(notFound.requestId, 'r1')
    assert.equal(exitCodeOf(notFound), 3)
    assert.equal(
      exitCodeOf(await toApiError(response(409, { error: { code: 'brand_new', message: 'x' } }))),
      3,
    )
    const proxy = await toApiError(response(502, '<html>bad gateway</html>'))
    assert.equal(proxy.code, 'internal')
    assert.equal(proxy.body.error.message, 'HTTP 502')
    assert.equal(exitCodeOf(proxy), 1)
    assert.equal(exitCodeOf(await toApiError(response(401, ''))), 4)
  })

  it('maps commander usage errors to 2 and help/version to 0', () => {
    assert.equal(
      exitCodeOf(new CommanderError(1, 'commander.unknownOption', 'unknown option')),
      exitCodes.usage,
    )
    assert.equal(exitCodeOf(new CommanderError(1, 'commander.missingArgument', 'missing')), exitCodes.usage)
    assert.equal(exitCodeOf(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)')), exitCodes.ok)
    assert.equal(exitCodeOf(new CommanderError(0, 'commander.version', '0.1.0')), exitCodes.ok)
  })

  it('maps anything else to 1', () => {
    assert.equal(exitCodeOf(new Error('boom')), 1)
    assert.equal(exitCodeOf(new ConnectionError('http://x', new Error('ECONNREFUSED'))), 1)
    assert.equal(exitCodeOf('a string'), 1)
  })
})
