import { randomUUID } from 'node:crypto'
import Docker from 'dockerode'
import { buildTestImage, ensureDockerEngine } from '../scripts/docker.ts'
import { freePort } from '../scripts/postgres.ts'
import { probe } from '../src/control/probe.ts'
import { type SingleImageSpecInput, singleImageSpecSchema } from '../src/domain/spec.ts'
import { createOptionsOf } from '../src/providers/docker/container-spec.ts'
import { hardeningOf } from '../src/providers/docker/docker-provider.ts'
import { portKeyOf } from '../src/providers/docker/labels.ts'
import { api, type RunningBerth, signIn, startBerth } from '../test/helpers/server.ts'
import { timeToRunning } from './time-to-running.ts'

// What berth adds to starting a container: time from POST /v1/deployments to `running` (an HTTP
// health check, healthyThreshold 1) against starting the very same container straight through the
// engine API (the create options berth would send: hardening, limits, a bridge network of its own)
// plus the same probe, polled every BASELINE_PROBE_MS until it passes. A third line starts a plain
// container on the default bridge (what a bare `docker run -d -p` does): the difference to the
// second line is the engine's own cost of berth's isolation and limits, not berth's.
//
// The three run interleaved (one of each in turn, the order rotating), so a slow spell of the
// engine weighs on all of them alike: 30 one after another, then bursts of 50 at once.
// Not a test: it prints p50/p99 and ratios. Usage: npm run bench:docker

const SEQUENTIAL = 30
const BURST = 50
/** Bursts per side: the p99 of one burst of 50 is its slowest but one. */
const BURST_ROUNDS = 3
const BASELINE_PROBE_MS = 50
const specInput = {
  image: '',
  ports: [{ containerPort: 80 }],
  healthCheck: { type: 'http', port: 80, path: '/', intervalSeconds: 5, healthyThreshold: 1 },
} satisfies Omit<SingleImageSpecInput, 'name'>
const check = { type: 'http' as const, path: '/', timeoutSeconds: 2 }

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

const engine = await ensureDockerEngine()
const image = await buildTestImage(engine.socketPath)
specInput.image = image
const docker = new Docker({ socketPath: engine.socketPath })
const [baselineKey, baselineValue] = ['berth-bench.run', randomUUID()]

/** The create options berth sends for this spec, on `network`, with the bench's label instead of berth's. */
function sameContainerAs(network: string, hostPort: number): Docker.ContainerCreateOptions {
  const spec = singleImageSpecSchema.parse({ ...specInput, name: 'raw' })
  const options = createOptionsOf(
    {
      deploymentId: randomUUID(),
      ownerId: 'bench',
      replica: 0,
      restartGeneration: 0,
      spec,
      network,
      hostPorts: { [portKeyOf(0, 80, 'tcp')]: hostPort },
    },
    hardeningOf({}),
  )
  // Unlabelled as berth's, so berth's orphan sweep leaves it alone; unnamed, as `docker run` is.
  const { name: _name, ...rest } = options
  return { ...rest, Labels: { [baselineKey]: baselineValue } }
}

/** A bare `docker run -d -p 127.0.0.1::80`: default bridge, no limits, no lock-down. */
function plainContainer(hostPort: number): Docker.ContainerCreateOptions {
  return {
    Image: image,
    Labels: { [baselineKey]: baselineValue },
    ExposedPorts: { '80/tcp': {} },
    HostConfig: { PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(hostPort) }] } },
  }
}

/** Raw engine: create, start, then probe until the page answers. */
async function rawRun(optionsFor: (hostPort: number) => Docker.ContainerCreateOptions): Promise<number> {
  const started = performance.now()
  const port = await freePort()
  const container = await docker.createContainer(optionsFor(port))
  await container.start()
  while (!(await probe(check, { host: '127.0.0.1', port })).ok) {
    await new Promise((resolve) => setTimeout(resolve, BASELINE_PROBE_MS))
  }
  return performance.now() - started
}

async function removeBaseline() {
  const left = await docker.listContainers({
    all: true,
    filters: { label: [`${baselineKey}=${baselineValue}`] },
  })
  await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })))
}

const created: string[] = []

/** berth: POST, then follow the deployment's events (SSE) until it is running. */
async function berthRun(server: RunningBerth, token: string, name: string): Promise<number> {
  const { id, ms } = await timeToRunning(server, token, { ...specInput, name })
  created.push(id)
  return ms
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

type Side = 'berth' | 'same' | 'plain'
const sides: Side[] = ['berth', 'same', 'plain']
/** The order of the sides in round `i`: each goes first, second and third in turn. */
const orderOf = (i: number): Side[] => sides.map((_, k) => sides[(i + k) % sides.length]!)

function report(label: string, times: Record<Side, number[]>) {
  const line = (values: number[]) =>
    `p50 ${percentile(values, 50).toFixed(0).padStart(5)} ms  p99 ${percentile(values, 99).toFixed(0).padStart(5)} ms`
  const ratio = (values: number[]) =>
    `p50 ${(percentile(times.berth, 50) / percentile(values, 50)).toFixed(2)}×  p99 ${(percentile(times.berth, 99) / percentile(values, 99)).toFixed(2)}×`
  console.log(`\n${label}`)
  console.log(`  berth (POST → running)                     ${line(times.berth)}`)
  console.log(
    `  raw, the same container (goal's baseline)  ${line(times.same)}   berth: ${ratio(times.same)}`,
  )
  console.log(
    `  raw, plain on the default bridge           ${line(times.plain)}   berth: ${ratio(times.plain)}`,
  )
}

const network = await docker.createNetwork({
  Name: `berth-bench-${randomUUID().slice(0, 8)}`,
  Driver: 'bridge',
})
const server = await startBerth({
  dockerSocket: engine.socketPath,
  env: {
    BERTH_LOG_LEVEL: 'warn',
    BERTH_USAGE__SAMPLE_INTERVAL_SECONDS: '0',
    // Bursts of idle workloads: the bench measures deploy time, not admission queues.
    BERTH_PROVIDERS__DOCKER__OVERCOMMIT: '100',
  },
})
try {
  const { token } = await signIn(server.url)
  const runOne: Record<Side, (name: string) => Promise<number>> = {
    berth: (name) => berthRun(server, token, name),
    same: () => rawRun((port) => sameContainerAs(network.id, port)),
    plain: () => rawRun(plainContainer),
  }
  const removeAll = async () => {
    await removeBerth(server, token)
    await removeBaseline()
  }
  // One of each first, so none pays for a cold start inside the figures. berth keeps its owner
  // network from here on, as the same-container baseline keeps its own.
  for (const side of sides) await runOne[side]('warm-up')
  await removeBaseline()

  const sequential: Record<Side, number[]> = { berth: [], same: [], plain: [] }
  for (let i = 0; i < SEQUENTIAL; i++) {
    for (const side of orderOf(i)) sequential[side].push(await runOne[side](`seq-${i}`))
  }
  await removeAll()
  report(`${SEQUENTIAL} sequential deployments`, sequential)

  const burst: Record<Side, number[]> = { berth: [], same: [], plain: [] }
  for (let round = 0; round < BURST_ROUNDS * sides.length; round++) {
    const side = orderOf(Math.floor(round / sides.length))[round % sides.length]!
    const times = await Promise.all(
      Array.from({ length: BURST }, (_, i) => runOne[side](`burst-${round}-${i}`)),
    )
    burst[side].push(...times)
    await removeAll()
  }
  report(`bursts of ${BURST} at once (${BURST_ROUNDS} per side)`, burst)
} finally {
  await removeBaseline().catch(() => {})
  await server.stop()
  await network.remove().catch(() => {})
  // A run that broke off leaves berth's containers behind once berth is stopped: remove them here.
  const mine = new Set(created)
  const left = await docker.listContainers({ all: true, filters: { label: ['berth.managed=true'] } })
  for (const c of left) {
    if (mine.has(c.Labels['berth.deployment'] ?? '')) await docker.getContainer(c.Id).remove({ force: true })
  }
  await engine.stop()
}
