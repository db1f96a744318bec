import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { anvilPrivateKey, blockNumber, mine } from './helpers/anvil.ts'
import { createPostgresDatabase } from './helpers/db.ts'
import { startMetadataServer } from './helpers/http-app.ts'
import { type NftChain, startNftChain } from './helpers/nft-fixture.ts'
import { api, type RunningBerth, runCli, signIn, startBerth } from './helpers/server.ts'
import { waitFor } from './helpers/wait.ts'

// NFT-bound deployments through a spawned `berth serve` (on PostgreSQL, so the test can read the
// watcher's cursor) and the `berth` CLI: a holder deploys with --nft, a transfer stops the
// deployment with the block that reaches the depth and not one block earlier, the new holder
// starts it and the old one gets 404 and a notification; a collection template deploys with no --image.

const CONFIRMATIONS = 2
const [A, B] = [1, 2]

let chain: NftChain
let berth: RunningBerth
let database: Awaited<ReturnType<typeof createPostgresDatabase>>
let metadata: Awaited<ReturnType<typeof startMetadataServer>>
let db: pg.Client
let tokenA: string
let tokenB: string

before(async () => {
  chain = await startNftChain(31341)
  metadata = await startMetadataServer()
  await chain.setBaseURI(`${metadata.url}/token/`)
  database = await createPostgresDatabase()
  db = new pg.Client({ connectionString: database.url })
  const dir = mkdtempSync(join(tmpdir(), 'berth-nft-'))
  const configFile = join(dir, 'berth.json')
  writeFileSync(
    configFile,
    JSON.stringify({
      networks: [chain.network({ confirmations: CONFIRMATIONS, pollIntervalMs: 100 })],
      outbound: { allow: [new URL(metadata.url).host] },
      nftCollections: [
        {
          chainId: chain.anvil.chainId,
          contract: chain.nft721,
          standard: 'erc721',
          template: { image: 'agent:2', env: { AGENT_NAME: '{{name}}', LEVEL: '{{attributes.level}}' } },
        },
      ],
    }),
  )
  berth = await startBerth({
    args: ['--config', configFile],
    databaseUrl: database.url,
    env: {
      BERTH_PROVIDERS__SIMULATED__PULL_MS: '0',
      BERTH_PROVIDERS__SIMULATED__CREATE_MS: '0',
      BERTH_PROVIDERS__SIMULATED__START_MS: '0',
    },
  })
  await db.connect()
  tokenA = (await signIn(berth.url, anvilPrivateKey(A))).token
  tokenB = (await signIn(berth.url, anvilPrivateKey(B))).token
})
after(async () => {
  await db?.end()
  await berth?.stop()
  await database?.drop()
  await metadata?.stop()
  await chain?.stop()
})

const cli = (args: string[], token: string) => runCli(berth.url, args, { BERTH_TOKEN: token })

/** Waits until berth's NFT watcher has applied every block that is confirmed at the current head. */
async function watcherCaughtUp() {
  const confirmed = (await blockNumber(chain.anvil)) - BigInt(CONFIRMATIONS)
  await waitFor(`nft cursor at ${confirmed}`, async () => {
    const { rows } = await db.query<{ block_number: string }>(
      `select block_number from chain_cursors where consumer = 'nft' and chain_id = $1`,
      [chain.anvil.chainId],
    )
    return rows[0] && BigInt(rows[0].block_number) >= confirmed
  })
}

describe('NFT-bound deployments end to end', () => {
  test('deploy with --nft; a transfer stops it with the block at the depth; the new holder starts it', async () => {
    await chain.mint721(A, 1n)
    await mine(chain.anvil, CONFIRMATIONS)
    const nft = `${chain.anvil.chainId}:${chain.nft721}:1`
    const refused = await cli(['deploy', '--name', 'not-mine', '--image', 'agent:1', '--nft', nft], tokenB)
    assert.notEqual(refused.code, 0)
    assert.match(refused.stderr, /does not hold token 1/)

    const deployed = await cli(
      ['deploy', '--name', 'agent-a', '--image', 'agent:1', '--nft', nft, '--json'],
      tokenA,
    )
    assert.equal(deployed.code, 0, deployed.stderr)
    const deployment = JSON.parse(deployed.stdout) as {
      id: string
      status: string
      spec: { env: Record<string, string> }
    }
    assert.equal(deployment.status, 'running')
    assert.equal(deployment.spec.env.NFT_TOKEN_ID, '1')

    const a = api(berth.url, tokenA)
    const b = api(berth.url, tokenB)
    await chain.transfer721(A, B, 1n)
    for (let depth = 1; depth < CONFIRMATIONS; depth++) {
      await mine(chain.anvil, 1)
      await watcherCaughtUp()
      const still = await a.get<{ desiredState: string }>(`/v1/deployments/${deployment.id}`)
      assert.equal(still.body.desiredState, 'running', `still running at depth ${depth}`)
    }
    await mine(chain.anvil, 1)
    // No further block is mined: the stop can only come from the block that reached the depth.
    await waitFor(
      'the old holder loses it',
      async () => (await a.get(`/v1/deployments/${deployment.id}`)).status === 404,
    )
    const moved = await b.get<{ status: string; desiredState: string; stopReason: string }>(
      `/v1/deployments/${deployment.id}`,
    )
    assert.equal(moved.body.desiredState, 'stopped')
    assert.equal(moved.body.stopReason, 'nft_transferred')
    await waitFor(
      'stopped',
      async () =>
        (await b.get<{ status: string }>(`/v1/deployments/${deployment.id}`)).body.status === 'stopped',
    )
    // The old holder keeps what it was told: the transfer, and before it the deployment running.
    const notices = await waitFor('the transfer notice', async () => {
      const got = await a.get<{ items: Array<{ type: string; deploymentId: string }> }>('/v1/notifications')
      return got.body.items[0]?.type === 'nft.transferred' && got.body.items
    })
    assert.deepEqual(
      notices.map((n) => [n.type, n.deploymentId]),
      [
        ['nft.transferred', deployment.id],
        ['deployment.running', deployment.id],
      ],
    )
    const listed = await b.get<{ items: Array<{ id: string }> }>('/v1/nfts')
    assert.deepEqual(
      listed.body.items.map((d) => d.id),
      [deployment.id],
    )
    assert.equal((await a.post(`/v1/deployments/${deployment.id}/start`)).status, 404)
    assert.equal((await b.post(`/v1/deployments/${deployment.id}/start`)).status, 202)
    await waitFor(
      'running for the new holder',
      async () =>
        (await b.get<{ status: string }>(`/v1/deployments/${deployment.id}`)).body.status === 'running',
    )
    const metrics = (await api(berth.url).get<string>('/metrics')).body
    assert.ok(metrics.includes('berth_nft_stops_total{reason="transfer"} 1'), 'the stop is counted')
    assert.ok(metrics.includes('berth_chain_cursor_lag_blocks{network="anvil-nft",consumer="nft"}'))
    const doc = await api(berth.url).get<{ paths: Record<string, unknown> }>('/openapi.json')
    assert.ok(doc.body.paths['/v1/nfts/{chainId}/{contract}/{tokenId}/deploy'])
    assert.ok(doc.body.paths['/v1/notifications'])
  })

  test("berth deploy --nft without --image deploys the collection's template, filled from the token's metadata", async () => {
    await chain.mint721(B, 2n)
    await mine(chain.anvil, CONFIRMATIONS)
    metadata.set(
      '/token/2',
      200,
      JSON.stringify({ name: 'Scout', attributes: [{ trait_type: 'level', value: 9 }] }),
    )
    const result = await cli(
      ['deploy', '--nft', `${chain.anvil.chainId}:${chain.nft721}:2`, '--json'],
      tokenB,
    )
    assert.equal(result.code, 0, result.stderr)
    const created = JSON.parse(result.stdout) as {
      status: string
      spec: { image: string; env: Record<string, string> }
    }
    assert.equal(created.status, 'running')
    assert.equal(created.spec.image, 'agent:2')
    assert.equal(created.spec.env.AGENT_NAME, 'Scout')
    assert.equal(created.spec.env.LEVEL, '9')
    assert.equal(created.spec.env.OWNER_ADDRESS, chain.addressOf(B).toLowerCase())
  })
})
