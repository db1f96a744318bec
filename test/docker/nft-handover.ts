import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type Docker from 'dockerode'
import { volumeNameOf } from '../../src/providers/docker/volumes.ts'
import { anvilPrivateKey, mine } from '../helpers/anvil.ts'
import { createPostgresDatabase } from '../helpers/db.ts'
import { type NftChain, startNftChain } from '../helpers/nft-fixture.ts'
import { api, type RunningBerth, signIn, startBerth } from '../helpers/server.ts'
import { waitFor } from '../helpers/wait.ts'
import { type DockerTestEngine, deleteAndWait, onDocker } from './berth-on-docker.ts'

// An NFT-bound deployment on the real engine changes hands on a real chain (anvil): nothing of the
// old holder's run reaches the new holder. The old container is removed (not restarted for the new
// holder), the new holder's start makes a new container on the new holder's network without the
// secret env value, the old holder's log lines are not readable, and the volume starts empty.
// Registered from providers-docker.test.ts.

const CONFIRMATIONS = 1
const [A, B] = [1, 2]
const SECRET = 's3cret-of-the-first-holder'
// Prints the secret it was given, and who wrote the volume first (the volume is empty only for a
// holder who did not inherit it).
const SCRIPT =
  'trap \'exit 0\' TERM; echo "secret=$API_SECRET"; ' +
  '[ -f /data/first ] || echo "$OWNER_ADDRESS" > /data/first; echo "volume=$(cat /data/first)"; ' +
  'while :; do sleep 1 & wait $!; done'

interface Deployment {
  id: string
  status: string
}

export function dockerNftHandoverTests(setUp: () => Promise<DockerTestEngine>) {
  describe('NFT handover on docker (e2e, anvil)', () => {
    let chain: NftChain
    let server: RunningBerth
    let database: Awaited<ReturnType<typeof createPostgresDatabase>>
    let docker: Docker
    let dir: string
    let holderA: ReturnType<typeof api>
    let holderB: ReturnType<typeof api>
    let id = ''

    before(async () => {
      const engine = await setUp()
      docker = engine.docker
      chain = await startNftChain(31351)
      database = await createPostgresDatabase()
      dir = mkdtempSync(join(tmpdir(), 'berth-handover-'))
      const configFile = join(dir, 'berth.json')
      writeFileSync(
        configFile,
        JSON.stringify({
          networks: [chain.network({ confirmations: CONFIRMATIONS, pollIntervalMs: 100 })],
          nftCollections: [{ chainId: chain.anvil.chainId, contract: chain.nft721, standard: 'erc721' }],
        }),
      )
      server = await startBerth({
        args: ['--config', configFile],
        databaseUrl: database.url,
        env: {
          ...onDocker(engine.socketPath),
        },
      })
      holderA = api(server.url, (await signIn(server.url, anvilPrivateKey(A))).token)
      holderB = api(server.url, (await signIn(server.url, anvilPrivateKey(B))).token)
      await chain.mint721(A, 1n)
      await mine(chain.anvil, CONFIRMATIONS)
    })
    after(async () => {
      if (id) await deleteAndWait(holderB, [id])
      await server?.stop()
      await database?.drop()
      await chain?.stop()
      if (dir) rmSync(dir, { recursive: true, force: true })
    })

    const containersOf = async (deploymentId: string) =>
      Promise.all(
        (
          await docker.listContainers({ all: true, filters: { label: [`berth.deployment=${deploymentId}`] } })
        ).map((c) => docker.getContainer(c.Id).inspect()),
      )
    const logsOf = async (client: ReturnType<typeof api>) =>
      (await client.get<string>(`/v1/deployments/${id}/logs?tail=100`)).body
    const statusFor = async (client: ReturnType<typeof api>) =>
      (await client.get<Deployment>(`/v1/deployments/${id}`)).body.status

    it('gives the new holder a fresh run: new container and network, no secret, no old logs, an empty volume', async () => {
      const created = await holderA.post<Deployment>('/v1/deployments', {
        name: 'agent',
        image: (await setUp()).image,
        command: ['sh', '-c', SCRIPT],
        env: { API_SECRET: SECRET },
        secretEnv: ['API_SECRET'],
        volumes: [{ name: 'data', mountPath: '/data' }],
        nft: { chainId: chain.anvil.chainId, contract: chain.nft721, tokenId: '1', standard: 'erc721' },
      })
      assert.equal(created.status, 202, JSON.stringify(created.body))
      id = created.body.id
      await waitFor(
        'running for the first holder',
        async () => (await statusFor(holderA)) === 'running',
        30_000,
      )
      const addressA = chain.addressOf(A).toLowerCase()
      await waitFor('the first holder sees its secret in the log', async () =>
        (await logsOf(holderA)).includes(`secret=${SECRET}`),
      )
      assert.match(await logsOf(holderA), new RegExp(`volume=${addressA}`))
      const [before] = await containersOf(id)
      assert.ok(before, 'a container runs for the first holder')
      assert.ok(before.Config.Env.includes(`API_SECRET=${SECRET}`))
      const networkBefore = Object.keys(before.NetworkSettings.Networks)

      await chain.transfer721(A, B, 1n)
      await mine(chain.anvil, CONFIRMATIONS)
      await waitFor(
        'the deployment moves to the new holder',
        async () => (await holderA.get(`/v1/deployments/${id}`)).status === 404,
      )
      await waitFor(
        'the first holder’s container is removed',
        async () => (await containersOf(id)).length === 0,
        30_000,
      )
      await waitFor(
        'stopped for the new holder',
        async () => (await statusFor(holderB)) === 'stopped',
        30_000,
      )
      await assert.rejects(docker.getVolume(volumeNameOf(id, 'data')).inspect(), 'the old volume is deleted')
      assert.equal(await logsOf(holderB), '', 'no log line of the first holder')
      const events = (await holderB.get<{ items: Array<{ type: string }> }>(`/v1/deployments/${id}/events`))
        .body.items
      assert.equal(events[0]?.type, 'nft_transferred', 'the new holder’s history starts at the transfer')

      assert.equal((await holderB.post(`/v1/deployments/${id}/start`)).status, 202)
      await waitFor(
        'running for the new holder',
        async () => (await statusFor(holderB)) === 'running',
        30_000,
      )
      const [after] = await containersOf(id)
      assert.ok(after)
      assert.notEqual(after.Id, before.Id, 'a new container, not the old one restarted')
      assert.notEqual(after.Config.Labels['berth.owner'], before.Config.Labels['berth.owner'])
      assert.notDeepEqual(
        Object.keys(after.NetworkSettings.Networks),
        networkBefore,
        'on the new holder’s network',
      )
      assert.ok(!after.Config.Env.some((e) => e.startsWith('API_SECRET=')), 'the secret value is dropped')
      const addressB = chain.addressOf(B).toLowerCase()
      await waitFor('the new holder’s workload has logged', async () =>
        (await logsOf(holderB)).includes('volume='),
      )
      const logs = await logsOf(holderB)
      assert.ok(!logs.includes(SECRET), 'the secret is nowhere in the new holder’s log')
      assert.match(logs, new RegExp(`volume=${addressB}`), 'the volume started empty')
      await docker.getVolume(volumeNameOf(id, 'data', 1)).inspect()
    })
  })
}
