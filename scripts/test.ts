import { spawn } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { ensurePromtool } from './apt.ts'
import { removeUnusedBerthNetworks } from './docker.ts'
import { startPostgres } from './postgres.ts'

// `npm test`: typecheck, lint, then every test file, with a throwaway PostgreSQL server started
// here so that integration tests run on both PGlite and a real server.

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
  const leftovers = await removeUnusedBerthNetworks()
  if (leftovers > 0) console.log(`» removed ${leftovers} unused berth networks left on the Docker engine`)
  console.log('» starting a throwaway PostgreSQL server')
  const postgres = await startPostgres()
  const stop = () => postgres.stop()
  process.once('SIGINT', () => void stop().then(() => process.exit(130)))
  try {
    const files = only.length ? only : [...findTests('src'), ...findTests('test')].sort()
    console.log(`» ${files.length} test files`)
    return await run(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
      { ...process.env, BERTH_TEST_POSTGRES_URL: postgres.url },
    )
  } finally {
    await stop()
  }
}

process.exitCode = await main()
