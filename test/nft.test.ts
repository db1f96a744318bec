import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { eq, sql } from 'drizzle-orm'
import type { Hex } from 'viem'
import { queryRows } from '../src/db/client.ts'
import { deployments } from '../src/db/schema/index.ts'
import { createSimulatedProvider } from '../src/providers/simulated/simulated-provider.ts'
import { openSpecSecrets } from '../src/secrets/spec-secrets.ts'
import { mine, publicClientFor, reorg, rpc } from './helpers/anvil.ts'
import { nft721Abi } from './helpers/contracts.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { createTestApp, type Reply, startMetadataServer, type TestApp } from './helpers/http-app.ts'
import { type NftChain, startNftChain } from './helpers/nft-fixture.ts'
import { singleImage } from './helpers/single-image.ts'
import { createStack, type Stack } from './helpers/stack.ts'
import { testVault } from './helpers/vault.ts'
import { waitFor } from './helpers/wait.ts'

// NFT-bound deployments on anvil with the ERC-721 and ERC-1155 test collections, through berth's
// HTTP app on both databases. The NFT watcher is driven with tick() after every mined block, so
// "within one poll after the depth, not before" is checked block by block.

const CONFIRMATIONS = 3
const [A, B, C] = [1, 2, 3]

let chain: NftChain
let metadata: Awaited<ReturnType<typeof startMetadataServer>>
before(async () => {
  chain = await startNftChain()
  metadata = await startMetadataServer()
  await chain.setBaseURI(`${metadata.url}/meta/`)
  const edition = { name: 'Edition', attributes: [{ trait_type: 'tier', value: 'gold' }] }
  await chain.setURI1155(
    `data:application/json;base64,${Buffer.from(JSON.stringify(edition)).toString('base64')}`,
  )
})
after(async () => {
  await metadata?.stop()
  await chain?.stop()
})

type Call = (method: string, path: string, body?: unknown) => Promise<Reply>

for (const [k, kind] of databaseKinds.entries()) {
  describe(`NFT-bound deployments (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp
    let a: Call
    let b: Call
    let c: Call
    let nextId = BigInt(1000 * (k + 1))
    const tokenId = () => nextId++

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database, {
        flags: {
          networks: [chain.network({ confirmations: CONFIRMATIONS })],
          // The token metadata server is on loopback: the guarded client reaches it only when allowed.
          outbound: { allow: [new URL(metadata.url).host] },
          nftCollections: [
            {
              chainId: chain.anvil.chainId,
              contract: chain.nft721,
              standard: 'erc721',
              template: {
                image: 'agent:1',
                env: {
                  AGENT_NAME: '{{name}}',
                  COLOR: '{{attributes.color}}',
                  TOKEN: '{{tokenId}}',
                  API_KEY: 'k',
                },
                secretEnv: ['API_KEY'],
              },
            },
            {
              chainId: chain.anvil.chainId,
              contract: chain.nft1155,
              standard: 'erc1155',
              carrySecrets: true,
              template: { image: 'edition:1', env: { TIER: '{{attributes.tier}}', NAME: '{{name}}' } },
            },
          ],
        },
      })
      // A provider slow enough that a transfer can land while a deploy is under way.
      stack.providers.add({
        ...createSimulatedProvider({
          stateDir: `${stack.stateDir}/slow`,
          pullMs: 700,
          createMs: 700,
          startMs: 700,
        }),
        name: 'slow',
      })
      app = await createTestApp(database, stack)
      a = await app.user(chain.addressOf(A))
      b = await app.user(chain.addressOf(B))
      c = await app.user(chain.addressOf(C))
      await watcher().tick()
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    const watcher = () => app.nft.watchers[0]!
    const mineAndTick = async (blocks: number) => {
      for (let i = 0; i < blocks; i++) {
        await mine(chain.anvil, 1)
        await watcher().tick()
      }
    }
    const binding = (id: bigint, standard: 'erc721' | 'erc1155' = 'erc721') => ({
      chainId: chain.anvil.chainId,
      contract: standard === 'erc721' ? chain.nft721 : chain.nft1155,
      tokenId: String(id),
      standard,
    })
    const waitStatus = (call: Call, id: string, status: string) =>
      waitFor(`${id} ${status}`, async () => {
        const res = await call('GET', `/v1/deployments/${id}`)
        return res.body?.status === status && res.body
      })
    /** Mints `id` to A, waits for the mint to be confirmed, and deploys it for A until running. */
    const runningFor721 = async (name: string, extra: Record<string, unknown> = {}) => {
      const id = tokenId()
      await chain.mint721(A, id)
      await mine(chain.anvil, CONFIRMATIONS)
      const created = await a('POST', '/v1/deployments', {
        name,
        image: 'agent:1',
        nft: binding(id),
        ...extra,
      })
      assert.equal(created.status, 202, JSON.stringify(created.body))
      await waitStatus(a, created.body.id, 'running')
      await watcher().tick()
      return { id, deployment: created.body.id as string }
    }
    const stopsTotal = async (reason: string) => {
      const line = (await app.metricsText())
        .split('\n')
        .find((l) => l.startsWith(`berth_nft_stops_total{reason="${reason}"}`))
      return line ? Number(line.split(' ')[1]) : 0
    }

    test('only the holder may bind a token; one live deployment per token; bad bindings are 4xx', async () => {
      const id = tokenId()
      await chain.mint721(A, id)
      const early = await a('POST', '/v1/deployments', { name: 'early', image: 'agent:1', nft: binding(id) })
      assert.equal(early.status, 403, 'the mint is not confirmed yet')
      assert.match(early.body.error.message, /not yet confirmed/)
      await mine(chain.anvil, CONFIRMATIONS)
      const stranger = await b('POST', '/v1/deployments', {
        name: 'theirs',
        image: 'agent:1',
        nft: binding(id),
      })
      assert.equal(stranger.status, 403)
      assert.equal(stranger.body.error.code, 'forbidden')
      const mine1 = await a('POST', '/v1/deployments', { name: 'mine', image: 'agent:1', nft: binding(id) })
      assert.equal(mine1.status, 202)
      assert.deepEqual(
        Object.fromEntries(
          Object.entries(mine1.body.spec.env).filter(
            ([key]) => key.startsWith('NFT_') || key === 'OWNER_ADDRESS',
          ),
        ),
        {
          NFT_CHAIN_ID: String(chain.anvil.chainId),
          NFT_CONTRACT: chain.nft721.toLowerCase(),
          NFT_TOKEN_ID: String(id),
          OWNER_ADDRESS: chain.addressOf(A).toLowerCase(),
        },
      )
      const twice = await a('POST', '/v1/deployments', {
        name: 'mine-again',
        image: 'agent:1',
        nft: binding(id),
      })
      assert.equal(twice.status, 409)
      const bad: Array<[unknown, number, RegExp]> = [
        [{ ...binding(id), tokenId: '01' }, 400, /tokenId/],
        [{ ...binding(id), tokenId: '1e3' }, 400, /tokenId/],
        [{ ...binding(id), tokenId: (2n ** 256n).toString() }, 400, /uint256/],
        [{ ...binding(id), contract: '0x1234' }, 400, /contract/],
        [{ ...binding(id), standard: 'erc20' }, 400, /standard/],
        [{ ...binding(id), standard: 'erc1155' }, 400, /is erc721/],
        [{ ...binding(id), contract: chain.addressOf(5) }, 400, /not configured/],
        [{ ...binding(id), chainId: 999 }, 400, /not configured/],
      ]
      for (const [nft, status, pattern] of bad) {
        const res = await a('POST', '/v1/deployments', { name: 'bad', image: 'agent:1', nft })
        assert.equal(res.status, status, JSON.stringify(nft))
        assert.match(JSON.stringify(res.body.error), pattern)
      }
      const never = await a('POST', '/v1/deployments', {
        name: 'never',
        image: 'agent:1',
        nft: binding(tokenId()),
      })
      assert.equal(never.status, 403, 'a token that does not exist has no holder')
    })

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

    test('a holder verified moments ago is refused once their transfer is confirmed (the cache is cleared)', async () => {
      const id = tokenId()
      await chain.mint721(A, id)
      await mine(chain.anvil, CONFIRMATIONS)
      await watcher().tick()
      const first = await a('POST', '/v1/deployments', { name: 'cached', image: 'agent:1', nft: binding(id) })
      assert.equal(first.status, 202)
      assert.equal((await a('DELETE', `/v1/deployments/${first.body.id}`)).status, 202)
      await chain.transfer721(A, B, id)
      await mineAndTick(CONFIRMATIONS)
      const again = await a('POST', '/v1/deployments', {
        name: 'cached-again',
        image: 'agent:1',
        nft: binding(id),
      })
      assert.equal(again.status, 403)
    })

    test('a transfer to a wallet berth has never seen creates its account and hands it the deployment', async () => {
      const { id, deployment } = await runningFor721('to-stranger')
      const stranger = chain.addressOf(6 + k).toLowerCase()
      await chain.transfer721(A, stranger as Hex, id)
      await mineAndTick(CONFIRMATIONS)
      assert.equal((await a('GET', `/v1/deployments/${deployment}`)).status, 404)
      const rows = await queryRows<{ address: string; desired_state: string }>(
        database.db,
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
      const [stored] = await database.db.select().from(deployments).where(eq(deployments.id, created.body.id))
      const carried = await openSpecSecrets(
        testVault(database.db),
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
      await database.db.execute(
        sql`update chain_cursors set block_number = ${BigInt(head.number).toString()}, block_hash = ${head.hash}
             where consumer = 'nft' and chain_id = ${chain.anvil.chainId}`,
      )
      await watcher().tick()
      assert.equal((await a('GET', `/v1/deployments/${live.deployment}`)).body.desiredState, 'running')

      await app.nft.recheck()
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

      await app.nft.sweep()
      assert.equal((await a('GET', `/v1/deployments/${idle.deployment}`)).status, 404)
      assert.equal((await c('GET', `/v1/deployments/${idle.deployment}`)).body.status, 'stopped')
      assert.deepEqual(await app.nft.sweep(), [], 'a second sweep finds nothing to do')
    })

    test('a collection template deploys one agent per token, filled from its metadata', async () => {
      const id = tokenId()
      await chain.mint721(B, id)
      await mine(chain.anvil, CONFIRMATIONS)
      metadata.set(
        `/meta/${id}`,
        200,
        JSON.stringify({
          name: `Agent ${id}`,
          description: 'd',
          attributes: [{ trait_type: 'color', value: 'blue' }],
        }),
      )
      const path = `/v1/nfts/${chain.anvil.chainId}/${chain.nft721}/${id}/deploy`
      assert.equal((await a('POST', path)).status, 403, 'not the holder')
      const res = await b('POST', path)
      assert.equal(res.status, 202, JSON.stringify(res.body))
      assert.equal(res.body.spec.image, 'agent:1')
      assert.equal(res.body.spec.env.AGENT_NAME, `Agent ${id}`)
      assert.equal(res.body.spec.env.COLOR, 'blue')
      assert.equal(res.body.spec.env.TOKEN, String(id))
      assert.equal(res.body.spec.env.OWNER_ADDRESS, chain.addressOf(B).toLowerCase())
      assert.deepEqual(res.body.spec.nft, binding(id))
      await waitStatus(b, res.body.id, 'running')
      assert.equal((await b('POST', path, { name: 'another' })).status, 409)

      const edition = tokenId()
      await chain.mint1155(B, edition, 1n)
      await mine(chain.anvil, CONFIRMATIONS)
      const fromData = await b('POST', `/v1/nfts/${chain.anvil.chainId}/${chain.nft1155}/${edition}/deploy`, {
        name: 'edition-b',
      })
      assert.equal(fromData.status, 202, JSON.stringify(fromData.body))
      assert.equal(fromData.body.spec.env.TIER, 'gold')
      assert.equal(fromData.body.spec.env.NAME, 'Edition')
    })

    test('bad metadata and bad paths are refused with a 4xx or 503, never a 500', async () => {
      const cases: Array<[number, string, number, RegExp]> = [
        [200, JSON.stringify({ name: 5 }), 400, /name/],
        [200, 'not json', 400, /not valid JSON/],
        [200, JSON.stringify([1, 2]), 400, /not a JSON object/],
        [200, JSON.stringify({ name: 'x'.repeat(300 * 1024) }), 400, /larger than/],
        // The host's own answer is not told (it could be anybody's): the same words as no answer.
        [500, '{}', 503, /^token metadata could not be fetched$/],
      ]
      for (const [status, body, expected, pattern] of cases) {
        const id = tokenId()
        await chain.mint721(B, id)
        await mine(chain.anvil, CONFIRMATIONS)
        metadata.set(`/meta/${id}`, status, body)
        const res = await b('POST', `/v1/nfts/${chain.anvil.chainId}/${chain.nft721}/${id}/deploy`)
        assert.equal(res.status, expected, `${body.slice(0, 40)} → ${JSON.stringify(res.body).slice(0, 200)}`)
        assert.match(res.body.error.message, pattern)
      }
      // A token whose metadata points inside (here: a loopback port berth is not allowed to reach)
      // is refused with the same words, and the inside host is never asked.
      const inside = await startMetadataServer()
      try {
        await chain.setBaseURI(`${inside.url}/meta/`)
        const id = tokenId()
        await chain.mint721(B, id)
        await mine(chain.anvil, CONFIRMATIONS)
        inside.set(`/meta/${id}`, 200, JSON.stringify({ name: 'secret' }))
        const res = await b('POST', `/v1/nfts/${chain.anvil.chainId}/${chain.nft721}/${id}/deploy`)
        assert.equal(res.status, 503)
        assert.equal(res.body.error.message, 'token metadata could not be fetched')
        assert.equal(inside.requests(), 0)
      } finally {
        await chain.setBaseURI(`${metadata.url}/meta/`)
        await inside.stop()
      }
      for (const path of [
        `/v1/nfts/0/${chain.nft721}/1/deploy`,
        `/v1/nfts/${chain.anvil.chainId}/0x12/1/deploy`,
        `/v1/nfts/${chain.anvil.chainId}/${chain.nft721}/-1/deploy`,
        `/v1/nfts/${chain.anvil.chainId}/${chain.addressOf(7)}/1/deploy`,
      ]) {
        const res = await b('POST', path)
        assert.equal(res.status, 400, path)
      }
      const extra = await b('POST', `/v1/nfts/${chain.anvil.chainId}/${chain.nft721}/1/deploy`, {
        image: 'x',
      })
      assert.equal(extra.status, 400)
    })
  })
}
