import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ProviderError } from '../provider.ts'
import { isNetworkMissing, toProviderError } from './errors.ts'

const engineError = (statusCode: number, message: string) =>
  Object.assign(new Error(`(HTTP code ${statusCode}) ${message}`), { statusCode, json: { message } })

describe('docker error translation', () => {
  it('an unreachable engine is unavailable', () => {
    const error = toProviderError(Object.assign(new Error('connect ENOENT'), { code: 'ENOENT' }), 'ping')
    assert.equal(error.kind, 'unavailable')
    assert.ok(error.cause)
  })

  it('a missing image is a permanent image_pull_failed with the engine’s message', () => {
    const error = toProviderError(engineError(404, 'No such image: nope:1'), 'create container')
    assert.equal(error.kind, 'permanent')
    assert.equal(error.eventType, 'image_pull_failed')
    assert.match(error.message, /No such image: nope:1/)
  })

  it('other server errors are transient; refused requests are permanent', () => {
    assert.equal(toProviderError(engineError(500, 'boom'), 'start').kind, 'transient')
    assert.equal(toProviderError(engineError(400, 'bad option'), 'create').kind, 'permanent')
  })

  it('knows a vanished network by its plain and its swarm-mode answer', () => {
    assert.ok(isNetworkMissing(engineError(404, 'network berth-owner-1 not found')))
    assert.ok(
      isNetworkMissing(
        engineError(
          500,
          'Could not attach to network x: rpc error: code = NotFound desc = network x not found',
        ),
      ),
    )
    assert.ok(!isNetworkMissing(engineError(500, 'boom')))
  })

  it('a swarm that cannot answer for itself is unavailable', () => {
    const error = toProviderError(engineError(503, 'This node is not a swarm manager.'), 'list services')
    assert.equal(error.kind, 'unavailable')
  })

  it('keeps ProviderErrors as they are', () => {
    const original = new ProviderError('permanent', 'x')
    assert.equal(toProviderError(original, 'y'), original)
  })
})
