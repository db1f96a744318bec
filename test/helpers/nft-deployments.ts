import assert from 'node:assert/strict'
import { after, before } from 'node:test'
import type { DatabaseKind } from '../../src/db/client.ts'
import { createSimulatedProvider } from '../../src/providers/simulated/simulated-provider.ts'
import { mine } from './anvil.ts'
import { openTestDatabase, type TestDatabase } from './db.ts'
import { createTestApp, type Reply, startMetadataServer, type TestApp } from './http-app.ts'
import { type NftChain, startNftChain } from './nft-fixture.ts'
import { createStack, type Stack } from './stack.ts'
import { waitFor } from './wait.ts'

// NFT-bound deployments through berth's HTTP app, for the test files that cover them: the NFT
// chain with a token metadata server (once per file), and per database kind a stack following
// both test collections, an app whose NFT watcher the tests drive with tick(), three holders'
// callers and the steps the tests share.

export const CONFIRMATIONS = 3
export const [A, B, C] = [1, 2, 3]

export type Call = (method: string, path: string, body?: unknown) => Promise<Reply>
export type MetadataServer = Awaited<ReturnType<typeof startMetadataServer>>

export interface NftWorld {
  chain: NftChain
  metadata: MetadataServer
}

/** The NFT chain and a metadata server its ERC-721 points at; the ERC-1155 has data: metadata. */
export async function startNftWorld(): Promise<NftWorld> {
  const chain = await startNftChain()
  const metadata = await startMetadataServer()
  await chain.setBaseURI(`${metadata.url}/meta/`)
  const edition = { name: 'Edition', attributes: [{ trait_type: 'tier', value: 'gold' }] }
  await chain.setURI1155(
    `data:application/json;base64,${Buffer.from(JSON.stringify(edition)).toString('base64')}`,
  )
  return { chain, metadata }
}

export interface NftDeployments {
  readonly database: TestDatabase
  readonly app: TestApp
  /** Callers for holders A, B and C. */
  a: Call
  b: Call
  c: Call
  /** A token id not used before on this database kind. */
  tokenId(): bigint
  watcher(): TestApp['nft']['watchers'][number]
  mineAndTick(blocks: number): Promise<void>
  binding(id: bigint, standard?: 'erc721' | 'erc1155'): Record<string, unknown>
  waitStatus(call: Call, id: string, status: string): Promise<Reply['body']>
  /** Mints a token to A, waits for the mint to be confirmed, and deploys it for A until running. */
  runningFor721(name: string, extra?: Record<string, unknown>): Promise<{ id: bigint; deployment: string }>
  stopsTotal(reason: string): Promise<number>
}

/**
 * Registers, in the describe it is called in, the hooks that set up (and tear down) one
 * database kind; `k` is the kind's index, which keeps token ids apart between kinds.
 */
export function useNftDeployments(world: () => NftWorld, kind: DatabaseKind, k: number): NftDeployments {
  let database: TestDatabase
  let stack: Stack
  let app: TestApp
  const callers: Partial<Record<'a' | 'b' | 'c', Call>> = {}
  let nextId = BigInt(1000 * (k + 1))

  before(async () => {
    const { chain, metadata } = world()
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
    // A provider slow enough that a transfer surely lands while a deploy is under way, however
    // busy the machine: its stages wait abortably, so the stop that cancels the deploy ends them.
    stack.providers.add({
      ...createSimulatedProvider({
        stateDir: `${stack.stateDir}/slow`,
        pullMs: 10_000,
        createMs: 10_000,
        startMs: 10_000,
      }),
      name: 'slow',
    })
    app = await createTestApp(database, stack)
    callers.a = await app.user(chain.addressOf(A))
    callers.b = await app.user(chain.addressOf(B))
    callers.c = await app.user(chain.addressOf(C))
    await watcher().tick()
  })
  after(async () => {
    await stack.stop()
    await database.dispose()
  })

  const caller =
    (who: 'a' | 'b' | 'c'): Call =>
    (method, path, body) =>
      callers[who]!(method, path, body)
  const a = caller('a')
  const watcher = () => app.nft.watchers[0]!
  const mineAndTick = async (blocks: number) => {
    for (let i = 0; i < blocks; i++) {
      await mine(world().chain.anvil, 1)
      await watcher().tick()
    }
  }
  const binding = (id: bigint, standard: 'erc721' | 'erc1155' = 'erc721') => {
    const { chain } = world()
    return {
      chainId: chain.anvil.chainId,
      contract: standard === 'erc721' ? chain.nft721 : chain.nft1155,
      tokenId: String(id),
      standard,
    }
  }
  const waitStatus = (call: Call, id: string, status: string) =>
    waitFor(`${id} ${status}`, async () => {
      const res = await call('GET', `/v1/deployments/${id}`)
      return res.body?.status === status && res.body
    })
  const tokenId = () => nextId++
  return {
    get database() {
      return database
    },
    get app() {
      return app
    },
    a,
    b: caller('b'),
    c: caller('c'),
    tokenId,
    watcher,
    mineAndTick,
    binding,
    waitStatus,
    async runningFor721(name, extra = {}) {
      const { chain } = world()
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
    },
    async stopsTotal(reason) {
      const line = (await app.metricsText())
        .split('\n')
        .find((l) => l.startsWith(`berth_nft_stops_total{reason="${reason}"}`))
      return line ? Number(line.split(' ')[1]) : 0
    },
  }
}
