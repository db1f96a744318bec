import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { authFor, normalizeRegistry, registryOf, repositoryOf } from './registry-auth.ts'

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
  it('names the repository without registry, tag or digest, as Docker Hub does', () => {
    assert.equal(repositoryOf('nginx:1.27'), 'library/nginx')
    assert.equal(repositoryOf('someone/app'), 'someone/app')
    assert.equal(repositoryOf('ghcr.io/Acme/Agent:2'), 'acme/agent')
    assert.equal(repositoryOf(`registry.example:5000/a/b/c@sha256:${'a'.repeat(64)}`), 'a/b/c')
    assert.equal(repositoryOf('localhost:5000/app:1'), 'app')
  })

  it('passes credentials only for the repositories they serve', () => {
    const auths = [
      { registry: 'ghcr.io', username: 'gh', password: 'p1', repositories: ['acme/*', 'solo/app'] },
    ]
    assert.equal(authFor('ghcr.io/acme/agent:1', auths)?.username, 'gh')
    assert.equal(authFor('ghcr.io/acme/team/agent', auths)?.username, 'gh')
    assert.equal(authFor('ghcr.io/solo/app:3', auths)?.username, 'gh')
    assert.equal(authFor('ghcr.io/solo/app-two', auths), undefined)
    assert.equal(authFor('ghcr.io/acmeish/agent', auths), undefined)
  })
})
