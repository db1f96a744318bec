import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { BerthError } from '../../domain/errors.ts'
import { createImagePolicy, type ImagePolicySettings } from './image-policy.ts'
import { pullFailureReason } from './images.ts'

// Which images a tenant may run, by name, before anything is pulled. Names are resolved by an
// injected resolver: no test asks a real DNS server.

const alice = `0x${'a1'.repeat(20)}`
const bob = `0x${'b2'.repeat(20)}`
const hostAddresses: Record<string, string[]> = {
  'registry.public.example': ['93.184.216.34'],
  'registry.inside.example': ['10.0.0.7'],
  'metadata.inside.example': ['169.254.169.254'],
  'mixed.example': ['93.184.216.34', '127.0.0.1'],
  intranet: ['10.9.9.9'],
}
const resolve = async (host: string) => {
  const addresses = hostAddresses[host]
  if (!addresses) throw new Error(`unknown host ${host}`)
  return addresses
}

const policyWith = (settings: Partial<ImagePolicySettings> = {}) =>
  createImagePolicy({ allowedRegistries: [], deniedRegistries: [], registryAuths: [], resolve, ...settings })
const tenant = (address: string | null, fromTemplate = false) => ({ ownerAddress: address, fromTemplate })

async function refused(promise: Promise<void>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof BerthError)
    assert.equal(error.code, 'forbidden')
    assert.match(error.message, message)
    return true
  })
}

describe('image policy', () => {
  const auths = [
    {
      registry: 'registry.public.example',
      username: 'op',
      password: 'secret',
      repositories: ['acme/*'],
      allowedFor: [alice],
    },
    { registry: 'ghcr.io', username: 'op', password: 'secret', repositories: ['acme/agent'] },
  ]

  it('runs an image the credentials serve only for whom they are allowed, naming the registry', async () => {
    const policy = policyWith({ registryAuths: auths })
    await policy.check('registry.public.example/acme/private:1', tenant(alice))
    await refused(
      policy.check('registry.public.example/acme/private:1', tenant(bob)),
      /private repository of registry\.public\.example/,
    )
    // A repository the credentials do not serve is a public pull for anyone.
    await policy.check('registry.public.example/other/app:1', tenant(bob))
  })

  it('keeps credentials without allowedFor to the operator’s templates', async () => {
    const policy = policyWith({ registryAuths: auths })
    await refused(policy.check('ghcr.io/acme/agent:2', tenant(alice)), /private repository of ghcr\.io/)
    await policy.check('ghcr.io/acme/agent:2', tenant(bob, true))
    await policy.check('ghcr.io/acme/other:2', tenant(bob))
  })

  it('refuses denied registries, and all but the allowed ones when a list is given', async () => {
    await refused(
      policyWith({ deniedRegistries: ['ghcr.io'] }).check('ghcr.io/someone/app', tenant(alice)),
      /images from ghcr\.io are not allowed/,
    )
    const only = policyWith({ allowedRegistries: ['registry.public.example'] })
    await only.check('registry.public.example/app', tenant(alice))
    await refused(only.check('nginx:1', tenant(alice)), /allowed registries: registry\.public\.example/)
  })

  it('refuses registries on loopback, private and link-local addresses, by literal and by name', async () => {
    const policy = policyWith()
    for (const image of [
      '127.0.0.1:5000/app',
      'localhost:5000/app',
      '[::1]:5000/app',
      '10.1.2.3/app',
      '169.254.169.254/app',
      'registry.inside.example/app',
      'metadata.inside.example:80/app',
      'mixed.example/app',
    ]) {
      await refused(policy.check(image, tenant(alice)), /private address/)
    }
    await policy.check('registry.public.example/app', tenant(alice))
    await policy.check('busybox', tenant(alice))
  })

  it('refuses names the engine would read as an image id, and upper-case hosts it would pull from', async () => {
    const policy = policyWith({ registryAuths: auths })
    for (const image of ['0', 'a', '4f1a2b', `sha256:${'c'.repeat(64)}`, 'ABC123']) {
      await refused(policy.check(image, tenant(alice)), /looks like an image id/)
    }
    // `Intranet/app` is pulled from the host Intranet, not from Docker Hub's intranet/app.
    await refused(policy.check('Intranet/app:1', tenant(alice)), /private address/)
    await refused(
      policyWith({ deniedRegistries: ['registry.inside.example'] }).check(
        'Registry.Inside.Example/x',
        tenant(alice),
      ),
      /not allowed/,
    )
  })

  it('lets the operator allow a registry on a private address', async () => {
    const policy = policyWith({ allowedRegistries: ['registry.inside.example', '127.0.0.1:5000'] })
    await policy.check('registry.inside.example/app', tenant(alice))
    await policy.check('127.0.0.1:5000/app', tenant(alice))
  })
})

describe('pull failure reasons', () => {
  it('says in a few words what went wrong, never the engine’s text', () => {
    assert.equal(pullFailureReason('manifest for x:1 not found: manifest unknown'), 'not found')
    assert.equal(pullFailureReason('pull access denied for x, repository does not exist'), 'unauthorized')
    assert.equal(pullFailureReason('unauthorized: authentication required'), 'unauthorized')
    assert.equal(
      pullFailureReason('Get "https://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused'),
      'unreachable',
    )
    assert.equal(pullFailureReason('something else entirely'), 'failed')
  })
})
