import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

// Compiles src/ to dist/: plain JavaScript that node runs without a loader. An idle `berth serve`
// from dist/ takes about half the memory it takes from the TypeScript sources through tsx (no
// loader thread, no source maps of every module). The files that are not TypeScript (the
// migrations) are copied alongside, and a stamp marks the build as complete: bin/berth.js runs
// dist/ only while the stamp is newer than every source file.
//
// Run by `npm install` (prepare), `npm test`, and `npm start` (with --if-stale: only when a source
// changed since the last build). Without the TypeScript compiler (an install without dev
// dependencies) it builds nothing, and berth runs from its sources.

const root = fileURLToPath(new URL('../', import.meta.url))
const dist = join(root, 'dist')
// Plain JavaScript shared with bin/berth.js, imported by URL (it has no type declarations).
const buildState = (await import(new URL('../bin/build-state.js', import.meta.url).href)) as {
  buildStamp: string
  builtIsCurrent(): boolean
}

const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
if (process.argv.includes('--if-stale') && buildState.builtIsCurrent()) {
  // Nothing changed since the last build.
} else if (!existsSync(tsc)) {
  console.log('» typescript is not installed: berth will run from its TypeScript sources')
} else {
  rmSync(dist, { recursive: true, force: true })
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' })
  const src = join(root, 'src')
  for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name.endsWith('.ts')) continue
    const from = join(entry.parentPath, entry.name)
    cpSync(from, join(dist, from.slice(src.length)))
  }
  writeFileSync(buildState.buildStamp, `${new Date().toISOString()}\n`)
}
