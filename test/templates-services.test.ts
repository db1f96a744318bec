import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { type Caller, createTestApp, type TestApp } from './helpers/http-app.ts'
import { recordingSimulatedProvider } from './helpers/recording-provider.ts'
import { createStack, type Stack } from './helpers/stack.ts'
import { waitFor } from './helpers/wait.ts'

// The IPFS templates through the API, on the simulated provider: the catalog shows the cluster's
// services and the storage sizes with their prices; `ipfs-cluster small` becomes one deployment of
// six services (three nodes, three cluster peers each after its node) with one generated cluster
// secret, handed to every peer and shown only by the credentials route. (On the real engine:
// templates-ipfs-docker.test.ts.)

describe('IPFS templates (simulated)', () => {
  let database: TestDatabase
  let stack: Stack
  let app: TestApp
  let alice: Caller
  let applied: Array<Record<string, string>> = []

  before(async () => {
    database = await openTestDatabase('pglite')
    const recording = recordingSimulatedProvider()
    applied = recording.applied
    stack = await createStack(database, { provider: recording.provider })
    app = await createTestApp(database, stack)
    alice = await app.user(`0x${'7c'.repeat(20)}`)
  })
  after(async () => {
    await stack.stop()
    await database.dispose()
  })

  it('lists ipfs, ipfs-cluster and storage with their sizes and prices, and the services of the cluster', async () => {
    const list = (await alice('GET', '/v1/templates')).body.items as Array<{
      id: string
      image?: string
      services?: Array<{ name: string }>
      sizes: Array<{ name: string; storageMb: number; price: { hourMicroUsd: string } }>
    }>
    assert.deepEqual(
      list.map((t) => t.id),
      ['ipfs', 'ipfs-cluster', 'postgres', 'storage'],
    )
    const storage = list.find((t) => t.id === 'storage')!
    assert.deepEqual(
      storage.sizes.map((s) => [s.name, s.storageMb]),
      [
        ['small', 5120],
        ['medium', 25600],
        ['large', 102400],
      ],
    )
    const cluster = list.find((t) => t.id === 'ipfs-cluster')!
    assert.equal(cluster.image, undefined)
    assert.deepEqual(
      cluster.services!.map((s) => s.name),
      ['ipfs0', 'ipfs1', 'ipfs2', 'cluster0', 'cluster1', 'cluster2'],
    )
    const small = cluster.sizes.find((s) => s.name === 'small')!
    assert.match(small.price.hourMicroUsd, /^[1-9]\d*$/)
  })

  it('deploys ipfs-cluster small as one deployment whose peers share one generated secret', async () => {
    const created = await alice('POST', '/v1/deployments', {
      template: 'ipfs-cluster',
      size: 'small',
      name: 'pins',
    })
    assert.equal(created.status, 202, JSON.stringify(created.body))
    const id = created.body.id as string
    const services = created.body.spec.services as Array<{
      name: string
      dependsOn?: string[]
      env?: Record<string, string>
      volumes?: Array<{ sizeMb?: number }>
    }>
    assert.deepEqual(
      services.map((s) => [s.name, s.dependsOn ?? []]),
      [
        ['ipfs0', []],
        ['ipfs1', []],
        ['ipfs2', []],
        ['cluster0', ['ipfs0']],
        ['cluster1', ['ipfs1']],
        ['cluster2', ['ipfs2']],
      ],
    )
    assert.equal(services[3]!.env!.CLUSTER_IPFSHTTP_NODEMULTIADDRESS, '/dns4/ipfs0.pins/tcp/5001')
    assert.equal(services[3]!.env!.CLUSTER_SECRET, undefined, 'the secret is never shown')
    assert.equal(services[0]!.volumes![0]!.sizeMb, 10240)
    await waitFor(
      'running',
      async () => (await alice('GET', `/v1/deployments/${id}`)).body.status === 'running',
    )

    const read = await alice('GET', `/v1/deployments/${id}/credentials`)
    assert.equal(read.status, 200)
    const secret = read.body.credentials.clusterSecret as string
    assert.match(secret, /^[0-9a-f]{64}$/)
    assert.match(read.body.credentials.apiCredentials, /^berth:[A-Za-z0-9]{32}$/, "the API's user:password")
    assert.ok(
      applied.some((env) => env.CLUSTER_SECRET === secret),
      'the peers were given it opened',
    )
    for (const path of [`/v1/deployments/${id}`, '/v1/deployments', `/v1/deployments/${id}/events`]) {
      assert.ok(!JSON.stringify((await alice('GET', path)).body).includes(secret), path)
    }
    const rotate = await alice('POST', `/v1/deployments/${id}/credentials/rotate`)
    assert.equal(rotate.status, 409)
  })

  it('refuses services on a provider that runs single images only, naming it', async () => {
    const refused = await alice('POST', '/v1/deployments', {
      name: 'pair',
      provider: 'fleet',
      services: [
        { name: 'a', image: 'a:1' },
        { name: 'b', image: 'b:1', dependsOn: ['a'] },
      ],
    })
    assert.equal(refused.status, 400, JSON.stringify(refused.body))
    assert.match(refused.body.error.message, /the fleet provider runs single-image deployments only/)
  })
})
