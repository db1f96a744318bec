import { randomUUID } from 'node:crypto'
import Docker from 'dockerode'
import { buildTestImage, ensureDockerEngine } from '../scripts/docker.ts'
import { freePort } from '../scripts/postgres.ts'
import { probe } from '../src/control/probe.ts'
import { api, type RunningBerth, signIn, startBerth } from '../test/helpers/server.ts'

// What berth adds to starting a container: time from POST /v1/deployments to `running` (an HTTP
// health check, healthyThreshold 1) against a raw create+start through the engine API plus the
// same probe, polled every BASELINE_PROBE_MS until it passes. 30 one after another, then a burst
// of 50 at once, each side in turn on the same engine, with the test image already present.
// Not a test: it prints p50/p99 and ratios. Usage: npm run bench:docker

const SEQUENTIAL = 30
const BURST = 50
const BASELINE_PROBE_MS = 50
const check = { type: 'http' as const, path: '/', timeoutSeconds: 2 }

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

const engine = await ensureDockerEngine()
const image = await buildTestImage(engine.socketPath)
const docker = new Docker({ socketPath: engine.socketPath })
const baselineLabel = `berth-bench.run=${randomUUID()}`

/**
 * Raw engine: create, start, then probe until the page answers. On the default bridge (what
 * `docker run -d` does), or on a network of its own like berth's per-owner network: attaching to a
 * user-defined bridge costs the engine itself 150–200 ms per container here, so the second
 * baseline separates what berth adds from what owner isolation costs.
 */
async function rawRun(network?: string): Promise<number> {
  const started = performance.now()
  const port = await freePort()
  const container = await docker.createContainer({
    Image: image,
    Labels: { [baselineLabel.split('=')[0]!]: baselineLabel.split('=')[1]! },
    ExposedPorts: { '80/tcp': {} },
    HostConfig: {
      PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] },
      ...(network ? { NetworkMode: network } : {}),
    },
  })
  await container.start()
  while (!(await probe(check, { host: '127.0.0.1', port })).ok) {
    await new Promise((resolve) => setTimeout(resolve, BASELINE_PROBE_MS))
  }
  return performance.now() - started
}

async function removeBaseline() {
  const left = await docker.listContainers({ all: true, filters: { label: [baselineLabel] } })
  await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })))
}

const created: string[] = []

/** berth: POST, then follow the deployment's events (SSE) until it is running. */
async function berthRun(server: RunningBerth, token: string, name: string): Promise<number> {
  const started = performance.now()
  const accepted = await api(server.url, token).post<{ id: string }>('/v1/deployments', {
    name,
    image,
    ports: [{ containerPort: 80 }],
    healthCheck: { type: 'http', port: 80, path: '/', intervalSeconds: 5, healthyThreshold: 1 },
  })
  if (accepted.status !== 202) throw new Error(`create: ${accepted.status} ${JSON.stringify(accepted.body)}`)
  created.push(accepted.body.id)
  const response = await fetch(`${server.url}/v1/deployments/${accepted.body.id}/events?follow=1`, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
  })
  const decoder = new TextDecoder()
  let text = ''
  for await (const chunk of response.body!) {
    text += decoder.decode(chunk as Uint8Array, { stream: true })
    if (text.includes('"status":"running"')) break
    if (text.includes('"status":"failed"')) throw new Error(`${name} failed: ${text}`)
  }
  const took = performance.now() - started
  await response.body?.cancel().catch(() => {})
  return took
}

/** Deletes what this benchmark created in berth and waits until the engine has none of it left. */
async function removeBerth(server: RunningBerth, token: string) {
  const client = api(server.url, token)
  const ids = created.splice(0)
  await Promise.all(ids.map((id) => client.del(`/v1/deployments/${id}`)))
  const mine = new Set(ids)
  for (;;) {
    // Only our own: another berth on this engine may have containers of its own.
    const left = await docker.listContainers({ all: true, filters: { label: ['berth.managed=true'] } })
    if (!left.some((c) => mine.has(c.Labels['berth.deployment'] ?? ''))) return
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

function report(label: string, berth: number[], raw: number[], rawOnNetwork: number[]) {
  const line = (values: number[]) =>
    `p50 ${percentile(values, 50).toFixed(0)} ms  p99 ${percentile(values, 99).toFixed(0)} ms`
  const ratio = (values: number[]) =>
    `p50 ${(percentile(berth, 50) / percentile(values, 50)).toFixed(2)}×  p99 ${(percentile(berth, 99) / percentile(values, 99)).toFixed(2)}×`
  console.log(`\n${label}`)
  console.log(`  berth (POST → running)                  ${line(berth)}`)
  console.log(`  raw create+start+probe, default bridge  ${line(raw)}   berth: ${ratio(raw)}`)
  console.log(
    `  raw create+start+probe, own network     ${line(rawOnNetwork)}   berth: ${ratio(rawOnNetwork)}`,
  )
}

const network = await docker.createNetwork({
  Name: `berth-bench-${randomUUID().slice(0, 8)}`,
  Driver: 'bridge',
})
const server = await startBerth({
  dockerSocket: engine.socketPath,
  env: { BERTH_LOG_LEVEL: 'warn', BERTH_USAGE__SAMPLE_INTERVAL_SECONDS: '0' },
})
try {
  const { token } = await signIn(server.url)
  // One of each first, so neither side pays for a cold start inside the figures.
  await berthRun(server, token, 'warm-up')
  await rawRun()
  await removeBerth(server, token)
  await removeBaseline()

  const seqBerth: number[] = []
  const seqRaw: number[] = []
  for (let i = 0; i < SEQUENTIAL; i++) seqBerth.push(await berthRun(server, token, `seq-${i}`))
  await removeBerth(server, token)
  for (let i = 0; i < SEQUENTIAL; i++) seqRaw.push(await rawRun())
  await removeBaseline()
  const seqRawOnNetwork: number[] = []
  for (let i = 0; i < SEQUENTIAL; i++) seqRawOnNetwork.push(await rawRun(network.id))
  await removeBaseline()
  report(`${SEQUENTIAL} sequential deployments`, seqBerth, seqRaw, seqRawOnNetwork)

  const burstBerth = await Promise.all(
    Array.from({ length: BURST }, (_, i) => berthRun(server, token, `burst-${i}`)),
  )
  await removeBerth(server, token)
  const burstRaw = await Promise.all(Array.from({ length: BURST }, () => rawRun()))
  await removeBaseline()
  const burstRawOnNetwork = await Promise.all(Array.from({ length: BURST }, () => rawRun(network.id)))
  await removeBaseline()
  report(`burst of ${BURST} at once`, burstBerth, burstRaw, burstRawOnNetwork)
} finally {
  await removeBaseline().catch(() => {})
  await network.remove().catch(() => {})
  await server.stop()
  // A run that broke off leaves berth's containers behind once berth is stopped: remove them here.
  const mine = new Set(created)
  const left = await docker.listContainers({ all: true, filters: { label: ['berth.managed=true'] } })
  for (const c of left) {
    if (mine.has(c.Labels['berth.deployment'] ?? '')) await docker.getContainer(c.Id).remove({ force: true })
  }
  await engine.stop()
}
