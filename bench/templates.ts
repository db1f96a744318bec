import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Docker from 'dockerode'
import { ensureDockerEngine } from '../scripts/docker.ts'
import { freePort } from '../scripts/postgres.ts'
import { buildPostgresImage } from '../scripts/postgres-image.ts'
import { probe } from '../src/control/probe.ts'
import { singleImageSpecSchema } from '../src/domain/spec.ts'
import { createOptionsOf } from '../src/providers/docker/container-spec.ts'
import { hardeningOf } from '../src/providers/docker/docker-provider.ts'
import { portKeyOf } from '../src/providers/docker/labels.ts'
import { createLoopVolumes } from '../src/providers/docker/sized-volumes.ts'
import { BUILT_IN_TEMPLATES, loadCatalog } from '../src/templates/catalog.ts'
import { renderTemplate } from '../src/templates/render.ts'
import { api, signIn, startBerth } from '../test/helpers/server.ts'
import { timeToRunning } from './time-to-running.ts'

// One-click PostgreSQL: time from POST /v1/deployments {"template": "postgres", "size": "small"}
// to `running`, against starting the very same container straight through the engine API (the
// create options berth would send for the rendered template, its 10 GiB storage volume made the
// same way) and waiting with the same probe: a TCP connect to 5432 at the template's interval
// (2 s). A third line polls every 50 ms instead, to show what the probe's interval itself costs.
// The sides run interleaved, their order rotating. Not a test: it prints p50/p99 and ratios.
// Usage: npm run bench:templates

const ROUNDS = 15
const engine = await ensureDockerEngine()
const image = await buildPostgresImage(engine.socketPath)
const docker = new Docker({ socketPath: engine.socketPath })
const postgres = loadCatalog([BUILT_IN_TEMPLATES]).get('postgres')!
const mirror = { 'postgres:16': image }
const interval = postgres.service!.healthCheck!.intervalSeconds * 1000
const run = randomUUID().slice(0, 8)
const dir = mkdtempSync(join(tmpdir(), 'berth-bench-templates-'))
const loops = createLoopVolumes(join(dir, 'raw-volumes'))
const rawVolumes: string[] = []

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

/** The rendered template's container, created and started raw, then probed every `everyMs`. */
async function rawRun(everyMs: number): Promise<number> {
  const started = performance.now()
  const spec = singleImageSpecSchema.parse(
    renderTemplate(postgres, { template: 'postgres', size: 'small', name: 'raw' }, { mirror }),
  )
  const volume = `berth-bench-${run}-${rawVolumes.length}`
  rawVolumes.push(volume)
  const driverOptions = await loops.prepare(volume, spec.volumes![0]!.sizeMb!, { uid: 999, gid: 999 })
  await docker.createVolume({ Name: volume, Driver: 'local', DriverOpts: driverOptions })
  const port = await freePort()
  const network = await networkOnce
  const { name: _name, ...options } = createOptionsOf(
    {
      deploymentId: randomUUID(),
      ownerId: 'bench',
      replica: 0,
      restartGeneration: 0,
      spec,
      network: network.id,
      hostPorts: { [portKeyOf(0, 5432, 'tcp')]: port },
      volumes: [{ name: spec.volumes![0]!.name, source: volume, mountPath: spec.volumes![0]!.mountPath }],
    },
    hardeningOf({}),
  )
  const container = await docker.createContainer({ ...options, Labels: { 'berth-bench.run': run } })
  await container.start()
  while (!(await probe({ type: 'tcp', timeoutSeconds: 2 }, { host: '127.0.0.1', port })).ok) {
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
  return performance.now() - started
}

async function removeRaw(): Promise<void> {
  for (const c of await docker.listContainers({
    all: true,
    filters: { label: [`berth-bench.run=${run}`] },
  })) {
    await docker.getContainer(c.Id).remove({ force: true })
  }
  for (const volume of rawVolumes.splice(0)) {
    await docker
      .getVolume(volume)
      .remove()
      .catch(() => {})
    await loops.remove(volume)
  }
}

const networkOnce = docker.createNetwork({ Name: `berth-bench-${run}`, Driver: 'bridge' })
const config = join(dir, 'berth.json')
writeFileSync(config, JSON.stringify({ images: { mirror } }))
const server = await startBerth({
  dockerSocket: engine.socketPath,
  args: ['--config', config],
  env: {
    BERTH_LOG_LEVEL: 'warn',
    BERTH_USAGE__SAMPLE_INTERVAL_SECONDS: '0',
    // The bench measures deploy time, not the admission queue of a two-core machine.
    BERTH_PROVIDERS__DOCKER__OVERCOMMIT: '100',
  },
})
const created: string[] = []
try {
  const { token } = await signIn(server.url)
  const client = api(server.url, token)
  const removeBerth = async () => {
    const ids = created.splice(0)
    for (const id of ids) await client.del(`/v1/deployments/${id}`)
    for (const id of ids) {
      while ((await client.get<{ status: string }>(`/v1/deployments/${id}`)).body.status !== 'deleted') {
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
  }
  type Side = 'berth' | 'same' | 'eager'
  const runOne: Record<Side, (i: number) => Promise<number>> = {
    berth: async (i) => {
      const { id, ms } = await timeToRunning(server, token, {
        template: 'postgres',
        size: 'small',
        name: `pg-${i}`,
      })
      created.push(id)
      return ms
    },
    same: () => rawRun(interval),
    eager: () => rawRun(50),
  }
  const sides: Side[] = ['berth', 'same', 'eager']
  // One of each first: nobody pays for a cold start inside the figures.
  for (const side of sides) await runOne[side](-1 - sides.indexOf(side))
  await removeBerth()
  await removeRaw()
  const times: Record<Side, number[]> = { berth: [], same: [], eager: [] }
  for (let i = 0; i < ROUNDS; i++) {
    for (const side of sides.map((_, k) => sides[(i + k) % sides.length]!)) {
      times[side].push(await runOne[side](i))
      // One PostgreSQL at a time: each start is measured on an otherwise idle machine.
      await removeBerth()
      await removeRaw()
    }
  }
  const line = (values: number[]) =>
    `p50 ${percentile(values, 50).toFixed(0).padStart(5)} ms  p99 ${percentile(values, 99).toFixed(0).padStart(5)} ms`
  const ratio = (values: number[]) =>
    `p50 ${(percentile(times.berth, 50) / percentile(values, 50)).toFixed(2)}×  p99 ${(percentile(times.berth, 99) / percentile(values, 99)).toFixed(2)}×`
  console.log(`\npostgres small, ${ROUNDS} rounds`)
  console.log(`  berth (POST → running)                        ${line(times.berth)}`)
  console.log(
    `  raw, same container, same probe (baseline)    ${line(times.same)}   berth: ${ratio(times.same)}`,
  )
  console.log(
    `  raw, same container, probed every 50 ms       ${line(times.eager)}   berth: ${ratio(times.eager)}`,
  )
} finally {
  await removeRaw().catch(() => {})
  await server.stop()
  await (await networkOnce).remove().catch(() => {})
  rmSync(dir, { recursive: true, force: true })
  await engine.stop()
}
