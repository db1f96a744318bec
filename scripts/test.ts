import { spawn } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { ensurePromtool } from './apt.ts'
import { buildTestImage, ensureDockerEngine, removeUnusedBerthNetworks } from './docker.ts'
import { startPostgres } from './postgres.ts'
import { buildPostgresImage } from './postgres-image.ts'
import { ensureSwarm, pushTestImage, startRegistry, untagTestImage } from './swarm.ts'

// `npm test`: typecheck, lint, then every test file, with what they need set up here, once, and
// undone at the end: a throwaway PostgreSQL server (integration tests run on both PGlite and a
// real server), the Docker engine (started unless one answers), made a one-node swarm unless it
// is one, and a registry on loopback holding the test image for the swarm's nodes to pull. Set up
// once, the engine is never stopped by one test file while another still uses it.

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'inherit', env })
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)))
  })
}

function findTests(dir: string): string[] {
  const out: string[] = []
  for (const entry of readdirSync(dir)) {
    if (entry === 'node_modules') continue
    const path = join(dir, entry)
    if (statSync(path).isDirectory()) out.push(...findTests(path))
    else if (entry.endsWith('.test.ts')) out.push(path)
  }
  return out
}

async function main(): Promise<number> {
  const only = process.argv.slice(2)
  const bin = (name: string) => join('node_modules', '.bin', name)
  if (only.length === 0) {
    console.log('» typecheck')
    if ((await run(bin('tsc'), ['--noEmit'])) !== 0) return 1
    console.log('» lint')
    if ((await run(bin('biome'), ['check', '.'])) !== 0) return 1
    // The end-to-end tests spawn bin/berth.js, which runs this build (what `npm start` runs).
    console.log('» build')
    if ((await run(process.execPath, ['--import', 'tsx', join('scripts', 'build.ts')])) !== 0) return 1
  }
  // Installed here, once, not by the tests that use it: two test files at once would both run apt.
  ensurePromtool()
  console.log('» the Docker engine, a one-node swarm and a registry on loopback')
  const engine = await ensureDockerEngine()
  await buildTestImage(engine.socketPath)
  await buildPostgresImage(engine.socketPath)
  const leftovers = await removeUnusedBerthNetworks(engine.socketPath)
  if (leftovers > 0) console.log(`» removed ${leftovers} unused berth networks left on the Docker engine`)
  const swarm = await ensureSwarm(engine.socketPath)
  const registry = await startRegistry()
  const swarmImage = await pushTestImage(registry.host, engine.socketPath)
  console.log('» starting a throwaway PostgreSQL server')
  const postgres = await startPostgres()
  // In reverse order of setting up; each step runs even when one before it failed.
  const stop = async () => {
    for (const step of [
      () => postgres.stop(),
      () => registry.stop(),
      () => untagTestImage(swarmImage, engine.socketPath),
      () => swarm.leave(),
      () => engine.stop(),
    ]) {
      await step().catch((error: unknown) => console.error(`» clean-up step failed: ${String(error)}`))
    }
  }
  process.once('SIGINT', () => void stop().then(() => process.exit(130)))
  try {
    const files = only.length ? only : [...findTests('src'), ...findTests('test')].sort()
    console.log(`» ${files.length} test files`)
    return await run(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
      { ...process.env, BERTH_TEST_POSTGRES_URL: postgres.url, BERTH_TEST_SWARM_IMAGE: swarmImage },
    )
  } finally {
    await stop()
  }
}

process.exitCode = await main()
