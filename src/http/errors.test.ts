import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { BerthError } from '../domain/errors.ts'
import { ProviderError } from '../providers/provider.ts'
import { hidesDetail, httpStatusOf, toBerthError } from './errors.ts'

// What a client is told when something fails: the code and status the failure has, in words that
// describe the request, never berth's inside (an engine's message, a socket path, a stack).

describe('errors shown to clients', () => {
  it('answers a provider that does not answer with 503 provider_unavailable, in a plain sentence', () => {
    const thrown = new ProviderError(
      'unavailable',
      'docker engine unreachable while trying to read logs of /berth-1: connect ENOENT /run/docker.sock',
    )
    const shown = toBerthError(thrown)
    assert.equal(shown.code, 'provider_unavailable')
    assert.equal(httpStatusOf[shown.code], 503)
    assert.doesNotMatch(shown.message, /docker|ENOENT|sock|berth-1/)
    assert.equal(shown.cause, thrown, 'the detail is kept for the log')
    assert.ok(hidesDetail(shown, thrown))
    assert.equal(
      toBerthError(new ProviderError('transient', 'docker failed: 500 oops')).code,
      'provider_unavailable',
    )
  })

  it('answers a provider that refuses for good with 422 provider_rejected, without its text', () => {
    const shown = toBerthError(
      new ProviderError('permanent', 'docker refused to create container: invalid mount'),
    )
    assert.equal(shown.code, 'provider_rejected')
    assert.equal(httpStatusOf[shown.code], 422)
    assert.doesNotMatch(shown.message, /mount|docker/)
  })

  it('passes berth’s own errors through, and hides anything else as internal', () => {
    const own = new BerthError('conflict', 'a deployment named "web" already exists')
    assert.equal(toBerthError(own), own)
    assert.equal(hidesDetail(own, own), false)
    const unknown = toBerthError(new TypeError('cannot read properties of undefined (reading "x")'))
    assert.equal(unknown.code, 'internal')
    assert.equal(unknown.message, 'internal error')
    assert.equal(httpStatusOf[unknown.code], 500)
  })
})
