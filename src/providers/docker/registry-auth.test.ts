import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { authFor, normalizeRegistry, registryOf } from './registry-auth.ts'

describe('registry credentials', () => {
  it('finds the registry an image is pulled from, as docker does', () => {
    assert.equal(registryOf('nginx'), 'docker.io')
    assert.equal(registryOf('nginx:1.27'), 'docker.io')
    assert.equal(registryOf('library/nginx'), 'docker.io')
    assert.equal(registryOf('someone/app:1'), 'docker.io')
    assert.equal(registryOf('ghcr.io/someone/app:1'), 'ghcr.io')
    assert.equal(registryOf(`Registry.Example:5000/app@sha256:${'a'.repeat(64)}`), 'registry.example:5000')
    assert.equal(registryOf('localhost/app'), 'localhost')
    assert.equal(registryOf('localhost:5000/app'), 'localhost:5000')
  })

  it('treats the Docker Hub spellings as one registry', () => {
    for (const spelling of [
      'docker.io',
      'index.docker.io',
      'https://index.docker.io/v1/',
      'registry-1.docker.io',
    ]) {
      assert.equal(normalizeRegistry(spelling), 'docker.io', spelling)
    }
  })

  it('passes the matching credentials only, with the server address the engine expects', () => {
    const auths = [
      { registry: 'ghcr.io', username: 'gh', password: 'p1' },
      { registry: 'https://index.docker.io/v1/', username: 'hub', password: 'p2' },
      { registry: 'registry.example:5000', username: 'own', password: 'p3' },
    ]
    assert.deepEqual(authFor('ghcr.io/a/b:1', auths), {
      username: 'gh',
      password: 'p1',
      serveraddress: 'ghcr.io',
    })
    assert.equal(authFor('someone/app', auths)?.username, 'hub')
    assert.equal(authFor('someone/app', auths)?.serveraddress, 'https://index.docker.io/v1/')
    assert.equal(authFor('registry.example:5000/x', auths)?.password, 'p3')
    // Another port is another registry; a look-alike host gets nothing.
    assert.equal(authFor('registry.example:5001/x', auths), undefined)
    assert.equal(authFor('ghcr.io.evil.example/a', auths), undefined)
    assert.equal(authFor('quay.io/a/b', auths), undefined)
  })
})
