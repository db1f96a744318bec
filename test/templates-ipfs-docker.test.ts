import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import Docker from 'dockerode'
import { type DockerEngine, ensureDockerEngine } from '../scripts/docker.ts'
import { buildIpfsImage } from '../scripts/ipfs-image.ts'
import { deleteAndWait, onDocker, waitRunning } from './docker/berth-on-docker.ts'
import { api, type RunningBerth, signIn, startBerth } from './helpers/server.ts'
import { waitFor } from './helpers/wait.ts'

// The IPFS templates on the real engine, end to end. No registry can be reached here, so
// images.mirror maps the official Kubo and IPFS Cluster images to an IPFS node built here from
// Helia (scripts/ipfs-image/), which plays either part by the environment the template gives it.
// `ipfs-cluster small`: content added through the cluster's API on one peer is fetched from
// another node's gateway. `storage small`: once its 5 GiB are written, adding fails and what was
// stored stays.

interface View {
  id: string
  status: string
  connection: Record<string, string>
}

/** Adds `content` as a file through an IPFS Cluster peer's API (`user:password`); the CID it answers. */
async function add(
  url: string,
  credentials: string,
  content: string,
): Promise<{ status: number; cid?: string; text: string }> {
  const form = new FormData()
  form.append('file', new Blob([content]), 'hello.txt')
  const response = await fetch(url, {
    method: 'POST',
    body: form,
    headers: { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` },
  })
  const text = await response.text()
  const first = text.trim().split('\n')[0] ?? ''
  const parsed = response.ok ? (JSON.parse(first) as { cid?: string | { '/': string }; Hash?: string }) : {}
  const cid = typeof parsed.cid === 'object' ? parsed.cid['/'] : (parsed.cid ?? parsed.Hash)
  return { status: response.status, text, ...(cid ? { cid } : {}) }
}

/**
 * Writes zeros into the node's volume until the filesystem refuses (ENOSPC), in large writes and
 * then small ones (the filesystem frees some reserved room once what was written is flushed), at
 * most 7 GiB; prints how much it wrote.
 */
const FILL_SCRIPT = `
const fs = require('fs')
const fd = fs.openSync('/data/ipfs/fill', 'w')
const fill = (size) => {
  const chunk = Buffer.alloc(size)
  try {
    while (fs.fstatSync(fd).size < 7 * 1024 ** 3) fs.writeSync(fd, chunk)
  } catch (error) {
    if (error.code !== 'ENOSPC') throw error
  }
  try { fs.fsyncSync(fd) } catch {}
}
fill(64 << 20)
fill(1 << 20)
fill(64 << 10)
console.log('ENOSPC after ' + Math.round(fs.fstatSync(fd).size / 1048576) + ' MiB')
`

describe('IPFS templates on docker (e2e)', { timeout: 600_000 }, () => {
  let server: RunningBerth
  let client: ReturnType<typeof api>
  let docker: Docker
  let dir: string
  let engine: DockerEngine | undefined
  const created: string[] = []

  before(async () => {
    engine = await ensureDockerEngine()
    docker = new Docker({ socketPath: engine.socketPath })
    const image = await buildIpfsImage(engine.socketPath)
    dir = mkdtempSync(join(tmpdir(), 'berth-ipfs-docker-'))
    const config = join(dir, 'berth.json')
    writeFileSync(
      config,
      JSON.stringify({
        images: { mirror: { 'ipfs/kubo:v0.32.1': image, 'ipfs/ipfs-cluster:v1.1.2': image } },
      }),
    )
    server = await startBerth({
      args: ['--config', config],
      // Six services of half a CPU and a storage node on a machine of two CPUs.
      env: { ...onDocker(engine.socketPath), BERTH_PROVIDERS__DOCKER__OVERCOMMIT: '4' },
    })
    client = api(server.url, (await signIn(server.url)).token)
  })
  after(async () => {
    if (client) await deleteAndWait(client, created)
    await server?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
    // Stops the engine only if this file had to start it (none answered).
    await engine?.stop()
  })

  const apiCredentials = async (id: string) =>
    (await client.get<{ credentials: { apiCredentials: string } }>(`/v1/deployments/${id}/credentials`)).body
      .credentials.apiCredentials

  const runningView = (id: string) => waitRunning<View>(client, id, 180_000)

  it('ipfs-cluster small: content added through one peer is fetched from another node through its gateway', async () => {
    const reply = await client.post<View>('/v1/deployments', {
      template: 'ipfs-cluster',
      size: 'small',
      name: 'pins',
    })
    assert.equal(reply.status, 202, JSON.stringify(reply.body))
    created.push(reply.body.id)
    const { connection } = await runningView(reply.body.id)
    const api = await apiCredentials(reply.body.id)
    const anonymous = await fetch(`${connection.api}/add`, { method: 'POST', body: new FormData() })
    assert.equal(anonymous.status, 401, 'the published API asks for its credentials')
    const content = `hello from berth ${Date.now()}`
    const added = await add(`${connection.api}/add`, api, content)
    assert.equal(added.status, 200, added.text)
    assert.ok(added.cid, added.text)
    for (const gateway of [connection.gateway2, connection.gateway1]) {
      const fetched: string = await waitFor(
        `${added.cid} on ${gateway}`,
        async () => {
          const response = await fetch(`${gateway}/ipfs/${added.cid}`, {
            signal: AbortSignal.timeout(10_000),
          })
          return response.ok ? await response.text() : null
        },
        60_000,
      )
      assert.equal(fetched, content)
    }
  })

  it('storage small: once its 5 GiB are written, adding fails and what was stored stays', async () => {
    const reply = await client.post<View>('/v1/deployments', {
      template: 'storage',
      size: 'small',
      name: 'vault',
    })
    assert.equal(reply.status, 202, JSON.stringify(reply.body))
    const id = reply.body.id
    created.push(id)
    const { connection } = await runningView(id)
    const api = await apiCredentials(id)
    const kept = await add(`${connection.api}/add`, api, 'kept')
    assert.equal(kept.status, 200, kept.text)

    // Fill the node's volume from inside its container, the way a tenant's writes would.
    const [container] = await docker.listContainers({
      filters: { label: [`berth.deployment=${id}`, 'berth.service=ipfs'] },
    })
    const exec = await docker.getContainer(container!.Id).exec({
      Cmd: ['/usr/bin/node', '-e', FILL_SCRIPT],
      AttachStdout: true,
      AttachStderr: true,
    })
    const stream = await exec.start({})
    let output = ''
    stream.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8')
    })
    await new Promise((resolve) => stream.on('end', resolve))
    const filled = /ENOSPC after (\d+) MiB/.exec(output)
    assert.ok(filled, `the write stops at the size: ${output}`)
    // About 5 GiB: the filesystem's own structures (and ext4's reserve) take a little of it.
    assert.ok(Number(filled[1]) <= 5120 && Number(filled[1]) >= 4600, `stopped after ${filled[1]} MiB`)

    const refused = await add(`${connection.api}/add`, api, 'x'.repeat(16 << 20))
    assert.ok(refused.status >= 400, `adding to a full node fails: ${refused.status} ${refused.text}`)
    const stored = await fetch(`${connection.gateway}/ipfs/${kept.cid}`)
    assert.equal(await stored.text(), 'kept')
  })
})
