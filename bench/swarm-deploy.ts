import { randomUUID } from 'node:crypto'
import Docker from 'dockerode'
import { buildTestImage, ensureDockerEngine } from '../scripts/docker.ts'
import { freePort } from '../scripts/postgres.ts'
import { ensureSwarm, pushTestImage, startRegistry, untagTestImage } from '../scripts/swarm.ts'
import { probe } from '../src/control/probe.ts'
import { type SingleImageSpecInput, singleImageSpecSchema } from '../src/domain/spec.ts'
import { portKeyOf } from '../src/providers/docker/labels.ts'
import { serviceSpecOf } from '../src/providers/swarm/service-spec.ts'
import { type RunningBerth, signIn, startBerth } from '../test/helpers/server.ts'
import { timeToRunning } from './time-to-running.ts'

// What berth adds to starting a replica on Docker Swarm: time from POST /v1/deployments to
// `running` (an HTTP health check, healthyThreshold 1) against creating the very same service
// straight through the engine API (the spec berth would send: hardening, limits and reservations,
// an overlay network, a host-mode port) plus the same probe, polled every BASELINE_PROBE_MS until
// it passes. The two run interleaved (one of each in turn, the order alternating), so a slow spell
// of the swarm weighs on both alike. Not a test: it prints p50/p99 and ratios.
// Usage: npm run bench:swarm

const ROUNDS = 30
const BASELINE_PROBE_MS = 50
const check = { type: 'http' as const, path: '/', timeoutSeconds: 2 }

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

const engine = await ensureDockerEngine()
await buildTestImage(engine.socketPath)
const swarm = await ensureSwarm(engine.socketPath)
const registry = await startRegistry()
const image = await pushTestImage(registry.host, engine.socketPath)
const docker = new Docker({ socketPath: engine.socketPath })
const specInput = {
  image,
  resources: { cpus: 0.01, memoryMb: 16 },
  ports: [{ containerPort: 80 }],
  healthCheck: { type: 'http', port: 80, path: '/', intervalSeconds: 5, healthyThreshold: 1 },
} satisfies Omit<SingleImageSpecInput, 'name'>
const benchLabel = { 'berth-bench.run': randomUUID() }

/** The raw side: berth's service spec for this deployment, created straight through the engine API. */
async function rawRun(network: string): Promise<number> {
  const started = performance.now()
  const port = await freePort()
  const spec = serviceSpecOf(
    {
      deploymentId: randomUUID(),
      ownerId: 'bench',
      replica: 0,
      restartGeneration: 0,
      spec: singleImageSpecSchema.parse({ ...specInput, name: 'raw' }),
      network,
      publishedPorts: { [portKeyOf(0, 80, 'tcp')]: port },
      secrets: [],
      volumes: [],
      volumeDriver: 'local',
      forceUpdate: 0,
      replicas: 1,
      constraints: [],
    },
    {
      pidsLimit: 256,
      readOnlyRootfs: false,
      stopGraceSeconds: 2,
      publishMode: 'host',
      logMaxSize: '10m',
      logMaxFiles: 3,
    },
  )
  // Labelled as the bench's, not berth's, so berth's orphan sweep leaves it alone.
  await docker.createService({ ...spec, Labels: benchLabel } as unknown as Docker.CreateServiceOptions)
  while (!(await probe(check, { host: '127.0.0.1', port })).ok) {
    await new Promise((resolve) => setTimeout(resolve, BASELINE_PROBE_MS))
  }
  return performance.now() - started
}

/** berth: POST, then follow the deployment's events (SSE) until it is running. */
async function berthRun(server: RunningBerth, token: string, name: string, ids: string[]): Promise<number> {
  const { id, ms } = await timeToRunning(server, token, { ...specInput, name })
  ids.push(id)
  return ms
}

const network = await docker.createNetwork({
  Name: `berth-bench-${randomUUID().slice(0, 8)}`,
  Driver: 'overlay',
  Attachable: true,
})
const server = await startBerth({
  env: {
    BERTH_LOG_LEVEL: 'warn',
    BERTH_USAGE__SAMPLE_INTERVAL_SECONDS: '0',
    BERTH_PROVIDERS__DEFAULT: 'swarm',
    BERTH_PROVIDERS__SWARM__ENABLED: 'true',
    BERTH_PROVIDERS__SWARM__HOST: `unix://${engine.socketPath}`,
    BERTH_PROVIDERS__DOCKER__ALLOWED_REGISTRIES: registry.host,
    BERTH_RECONCILER__SWEEP_INTERVAL_SECONDS: '86400',
  },
})
const ids: string[] = []
try {
  const { token } = await signIn(server.url)
  const times = { berth: [] as number[], raw: [] as number[] }
  const runOne = {
    berth: (i: number) => berthRun(server, token, `b-${i}`, ids),
    raw: () => rawRun(network.id),
  }
  // One of each first, so neither pays for a cold start inside the figures.
  await runOne.berth(-1)
  await runOne.raw()
  for (let i = 0; i < ROUNDS; i++) {
    const order = i % 2 === 0 ? (['berth', 'raw'] as const) : (['raw', 'berth'] as const)
    for (const side of order) times[side].push(await runOne[side](i))
  }
  const line = (values: number[]) =>
    `p50 ${percentile(values, 50).toFixed(0).padStart(5)} ms  p99 ${percentile(values, 99).toFixed(0).padStart(5)} ms`
  console.log(`\n${ROUNDS} sequential deployments on a one-node swarm`)
  console.log(`  berth (POST → running)                  ${line(times.berth)}`)
  console.log(`  raw service create, same spec + probe   ${line(times.raw)}`)
  console.log(
    `  berth / raw: p50 ${(percentile(times.berth, 50) / percentile(times.raw, 50)).toFixed(2)}×  p99 ${(percentile(times.berth, 99) / percentile(times.raw, 99)).toFixed(2)}×  (goal: ≤ 1.10× and ≤ 1.25×)`,
  )
} finally {
  await server.stop()
  // What both sides created, straight through the engine: the bench's services and berth's.
  const mine = new Set(ids)
  for (const service of await docker.listServices()) {
    const labels = service.Spec?.Labels ?? {}
    if (labels['berth-bench.run'] || mine.has(labels['berth.deployment'] ?? '')) {
      await docker
        .getService(service.ID!)
        .remove()
        .catch(() => {})
    }
  }
  // Their tasks end before the networks they use can go.
  for (
    let i = 0;
    i < 100 &&
    (await docker.listContainers({ filters: { label: ['com.docker.swarm.service.id'] } })).length > 0;
    i++
  ) {
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  for (const left of await docker.listNetworks({ filters: { label: ['berth.managed=swarm'] } })) {
    await docker
      .getNetwork(left.Id)
      .remove()
      .catch(() => {})
  }
  await docker
    .getNetwork(network.id)
    .remove()
    .catch(() => {})
  await registry.stop()
  await untagTestImage(image, engine.socketPath)
  await swarm.leave()
  await engine.stop()
}
