import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { mine } from './helpers/anvil.ts'
import { databaseKinds } from './helpers/db.ts'
import { startMetadataServer } from './helpers/http-app.ts'
import {
  A,
  B,
  CONFIRMATIONS,
  type MetadataServer,
  startNftWorld,
  useNftDeployments,
} from './helpers/nft-deployments.ts'
import type { NftChain } from './helpers/nft-fixture.ts'

// Binding deployments to NFTs, on anvil with the ERC-721 and ERC-1155 test collections, through
// berth's HTTP app on both databases: who may bind a token and with what, a holder's cached check
// cleared by their transfer, and deploying from a collection's template filled from the token's
// metadata, refusing bad metadata and bad paths.

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
    const { a, b, tokenId, watcher, mineAndTick, binding, waitStatus } = useNftDeployments(
      () => ({ chain, metadata }),
      kind,
      k,
    )

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
