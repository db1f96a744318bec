import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { eq, sql } from 'drizzle-orm'
import type { Hex } from 'viem'
import { queryRows } from '../src/db/client.ts'
import { deployments } from '../src/db/schema/index.ts'
import { openSpecSecrets } from '../src/secrets/spec-secrets.ts'
import { mine, publicClientFor, reorg, rpc } from './helpers/anvil.ts'
import { nft721Abi } from './helpers/contracts.ts'
import { databaseKinds } from './helpers/db.ts'
import {
  A,
  B,
  C,
  CONFIRMATIONS,
  type MetadataServer,
  startNftWorld,
  useNftDeployments,
} from './helpers/nft-deployments.ts'
import type { NftChain } from './helpers/nft-fixture.ts'
import { singleImage } from './helpers/single-image.ts'
import { testVault } from './helpers/vault.ts'
import { waitFor } from './helpers/wait.ts'

// NFT-bound deployments when their token changes hands, on anvil with the ERC-721 and ERC-1155
// test collections, through berth's HTTP app on both databases: transfers, burns, reorgs, partial
// ERC-1155 holdings and the backstops for missed logs. The NFT watcher is driven with tick() after
// every mined block, so "within one poll after the depth, not before" is checked block by block.

let chain: NftChain
let metadata: MetadataServer
before(async () => {
  ;({ chain, metadata } = await startNftWorld())
})
after(async () => {
  await metadata?.stop()
  await chain?.stop()
})

for (const [k, kind] of databaseKinds.entries()) {
  describe(`NFT-bound deployments (${kind})`, () => {
    const fx = useNftDeployments(() => ({ chain, metadata }), kind, k)
    const { a, b, c, tokenId, watcher, mineAndTick, binding, waitStatus, runningFor721, stopsTotal } = fx

    test('a transfer stops the deployment in the poll that reaches the depth, not before; the new holder gets it, the old one a notification and 404', async () => {
      const before = await stopsTotal('transfer')
      const { id, deployment } = await runningFor721('agent', {
        env: { API_KEY: 'secret-of-a', PUBLIC: 'kept' },
        secretEnv: ['API_KEY'],
      })
      await chain.transfer721(A, B, id)
      await watcher().tick()
      for (let depth = 1; depth < CONFIRMATIONS; depth++) {
        await mineAndTick(1)
        const still = await a('GET', `/v1/deployments/${deployment}`)
        assert.equal(still.body.desiredState, 'running', `not stopped at depth ${depth}`)
      }
      await mineAndTick(1)
      assert.equal((await a('GET', `/v1/deployments/${deployment}`)).status, 404, 'the old holder lost it')
      const moved = await b('GET', `/v1/deployments/${deployment}`)
      assert.equal(moved.status, 200)
      assert.equal(moved.body.desiredState, 'stopped')
      assert.equal(moved.body.stopReason, 'nft_transferred')
      assert.equal(moved.body.owner, chain.addressOf(B).toLowerCase())
      assert.equal(moved.body.spec.env.API_KEY, undefined, "the old holder's secret is dropped")
      assert.equal(moved.body.spec.env.PUBLIC, 'kept')
      assert.equal(moved.body.spec.env.OWNER_ADDRESS, chain.addressOf(B).toLowerCase())
      await waitStatus(b, deployment, 'stopped')
      const events = (await b('GET', `/v1/deployments/${deployment}/events`)).body.items
      const transferred = events.find((e: { type: string }) => e.type === 'nft_transferred')
      assert.equal(transferred.data.from, chain.addressOf(A).toLowerCase())
      assert.deepEqual(transferred.data.secretEnvDropped, ['API_KEY'])
      // The old holder is told (its in-app list keeps it), once.
      const notices = await waitFor('the transfer notice', async () => {
        const items = (await a('GET', '/v1/notifications')).body.items as Array<{
          type: string
          deploymentId: string
          message: string
        }>
        const told = items.filter((n) => n.type === 'nft.transferred' && n.deploymentId === deployment)
        return told.length > 0 && told
      })
      assert.equal(notices.length, 1)
      assert.match(notices[0]!.message, /left you; deployment "[^"]+" went with it/)
      assert.equal((await stopsTotal('transfer')) - before, 1)

      assert.equal((await a('POST', `/v1/deployments/${deployment}/start`)).status, 404)
      assert.equal((await b('POST', `/v1/deployments/${deployment}/start`)).status, 202)
      await waitStatus(b, deployment, 'running')
      const listed = (await b('GET', '/v1/nfts')).body.items.map((d: { id: string }) => d.id)
      assert.ok(listed.includes(deployment))
      assert.ok(!(await a('GET', '/v1/nfts')).body.items.some((d: { id: string }) => d.id === deployment))

      // The new holder may also delete it and deploy the token again.
      assert.equal((await b('DELETE', `/v1/deployments/${deployment}`)).status, 202)
      const again = await b('POST', '/v1/deployments', {
        name: 'agent-b',
        image: 'agent:1',
        nft: binding(id),
      })
      assert.equal(again.status, 202, JSON.stringify(again.body))
    })

    test('a transfer to a wallet berth has never seen creates its account and hands it the deployment', async () => {
      const { id, deployment } = await runningFor721('to-stranger')
      const stranger = chain.addressOf(6 + k).toLowerCase()
      await chain.transfer721(A, stranger as Hex, id)
      await mineAndTick(CONFIRMATIONS)
      assert.equal((await a('GET', `/v1/deployments/${deployment}`)).status, 404)
      const rows = await queryRows<{ address: string; desired_state: string }>(
        fx.database.db,
        sql`select a.address, d.desired_state from deployments d join accounts a on a.id = d.owner_id
             where d.id = ${deployment}`,
      )
      assert.deepEqual(rows, [{ address: stranger, desired_state: 'stopped' }])
    })

    test('a transfer reorged away before the depth stops nothing', async () => {
      const { id, deployment } = await runningFor721('reorged')
      await chain.transfer721(A, B, id)
      await mineAndTick(CONFIRMATIONS - 2)
      await reorg(chain.anvil, CONFIRMATIONS - 1)
      await mineAndTick(CONFIRMATIONS + 2)
      const res = await a('GET', `/v1/deployments/${deployment}`)
      assert.equal(res.status, 200)
      assert.equal(res.body.desiredState, 'running')
      assert.equal(res.body.status, 'running')
      const holder = await publicClientFor(chain.anvil).readContract({
        address: chain.nft721,
        abi: nft721Abi,
        functionName: 'ownerOf',
        args: [id],
      })
      assert.equal(holder, chain.addressOf(A), 'the reorg took the transfer away')
      assert.equal((await a('POST', `/v1/deployments/${deployment}/restart`)).status, 202, 'A still holds it')
    })

    test('a transfer confirmed during a deploy cancels it: the deployment never runs', async () => {
      const id = tokenId()
      await chain.mint721(A, id)
      await mine(chain.anvil, CONFIRMATIONS)
      await watcher().tick()
      const created = await a('POST', '/v1/deployments', {
        name: 'slow',
        image: 'agent:1',
        provider: 'slow',
        nft: binding(id),
      })
      assert.equal(created.status, 202)
      await waitStatus(a, created.body.id, 'deploying')
      await chain.transfer721(A, B, id)
      await mineAndTick(CONFIRMATIONS)
      const during = await b('GET', `/v1/deployments/${created.body.id}`)
      assert.equal(during.body.desiredState, 'stopped')
      assert.notEqual(during.body.status, 'running')
      await waitStatus(b, created.body.id, 'stopped')
      const events = (await b('GET', `/v1/deployments/${created.body.id}/events`)).body.items
      assert.ok(!events.some((e: { status?: string }) => e.status === 'running'), 'it never ran')
    })

    test('a burn stops the deployment and leaves it with the old holder, who can no longer start it', async () => {
      const before = await stopsTotal('burn')
      const { id, deployment } = await runningFor721('burned')
      await chain.burn721(A, id)
      await mineAndTick(CONFIRMATIONS)
      const res = await a('GET', `/v1/deployments/${deployment}`)
      assert.equal(res.status, 200)
      assert.equal(res.body.desiredState, 'stopped')
      assert.equal(res.body.stopReason, 'nft_transferred')
      await waitStatus(a, deployment, 'stopped')
      const events = (await a('GET', `/v1/deployments/${deployment}/events`)).body.items
      assert.ok(events.some((e: { type: string }) => e.type === 'nft_burned'))
      await waitFor('the burn notice', async () =>
        (await a('GET', '/v1/notifications')).body.items.some(
          (n: { type: string; data: { burned: boolean } }) => n.type === 'nft.transferred' && n.data.burned,
        ),
      )
      const start = await a('POST', `/v1/deployments/${deployment}/start`)
      assert.equal(start.status, 403)
      assert.equal((await a('POST', `/v1/deployments/${deployment}/restart`)).status, 403)
      assert.equal((await stopsTotal('burn')) - before, 1)
      assert.equal((await a('DELETE', `/v1/deployments/${deployment}`)).status, 202)
    })

    test('ERC-1155: a holder who keeps some keeps the deployment; giving away the last one moves it', async () => {
      const id = tokenId()
      await chain.mint1155(A, id, 2n)
      await mine(chain.anvil, CONFIRMATIONS)
      const created = await a('POST', '/v1/deployments', {
        name: 'edition',
        image: 'edition:1',
        env: { SECRET: 's' },
        secretEnv: ['SECRET'],
        nft: binding(id, 'erc1155'),
      })
      assert.equal(created.status, 202, JSON.stringify(created.body))
      await waitStatus(a, created.body.id, 'running')
      await watcher().tick()
      await chain.transfer1155(A, C, id, 1n)
      await mineAndTick(CONFIRMATIONS + 1)
      assert.equal((await a('GET', `/v1/deployments/${created.body.id}`)).body.desiredState, 'running')
      await chain.transfer1155(A, B, id, 1n)
      await mineAndTick(CONFIRMATIONS)
      assert.equal((await a('GET', `/v1/deployments/${created.body.id}`)).status, 404)
      const moved = await b('GET', `/v1/deployments/${created.body.id}`)
      assert.equal(moved.body.stopReason, 'nft_transferred')
      assert.deepEqual(moved.body.spec.secretEnv, ['SECRET'])
      assert.equal(moved.body.spec.env.SECRET, undefined, 'secret values are never shown')
      const [stored] = await fx.database.db
        .select()
        .from(deployments)
        .where(eq(deployments.id, created.body.id))
      const carried = await openSpecSecrets(
        testVault(fx.database.db),
        { ownerId: stored!.ownerId, deploymentId: stored!.id },
        stored!.spec,
      )
      assert.equal(
        singleImage(carried).env?.SECRET,
        's',
        'this collection carries secrets over, sealed for the new holder',
      )
      await waitStatus(b, created.body.id, 'stopped')
      assert.equal((await c('POST', `/v1/deployments/${created.body.id}/start`)).status, 404)
      assert.equal((await b('POST', `/v1/deployments/${created.body.id}/start`)).status, 202)
      await waitStatus(b, created.body.id, 'running')
      await chain.burn1155(B, id, 1n)
      await mineAndTick(CONFIRMATIONS)
      assert.equal((await b('GET', `/v1/deployments/${created.body.id}`)).body.desiredState, 'stopped')
    })

    test('the backstops catch a transfer whose log the watcher missed', async () => {
      const before = await stopsTotal('recheck')
      const live = await runningFor721('missed')
      const idle = await runningFor721('missed-idle')
      assert.equal((await a('POST', `/v1/deployments/${idle.deployment}/stop`)).status, 202)
      await chain.transfer721(A, B, live.id)
      await chain.transfer721(A, C, idle.id)
      await mine(chain.anvil, CONFIRMATIONS + 1)
      // Move the watcher's cursor past both transfers, as if their logs had never come.
      const head = await rpc<{ number: Hex; hash: Hex }>(chain.anvil.rpcUrl, 'eth_getBlockByNumber', [
        'latest',
        false,
      ])
      await fx.database.db.execute(
        sql`update chain_cursors set block_number = ${BigInt(head.number).toString()}, block_hash = ${head.hash}
             where consumer = 'nft' and chain_id = ${chain.anvil.chainId}`,
      )
      await watcher().tick()
      assert.equal((await a('GET', `/v1/deployments/${live.deployment}`)).body.desiredState, 'running')

      await fx.app.nft.recheck()
      assert.equal((await a('GET', `/v1/deployments/${live.deployment}`)).status, 404)
      const caught = await b('GET', `/v1/deployments/${live.deployment}`)
      assert.equal(caught.body.desiredState, 'stopped')
      assert.equal(caught.body.stopReason, 'nft_transferred')
      await waitStatus(b, live.deployment, 'stopped')
      assert.equal((await stopsTotal('recheck')) - before, 1)
      assert.equal(
        (await a('GET', `/v1/deployments/${idle.deployment}`)).status,
        200,
        'the recheck skips stopped ones',
      )

      await fx.app.nft.sweep()
      assert.equal((await a('GET', `/v1/deployments/${idle.deployment}`)).status, 404)
      assert.equal((await c('GET', `/v1/deployments/${idle.deployment}`)).body.status, 'stopped')
      assert.deepEqual(await fx.app.nft.sweep(), [], 'a second sweep finds nothing to do')
    })
  })
}
