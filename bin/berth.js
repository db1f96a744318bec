#!/usr/bin/env -S node --liftoff-only
// --liftoff-only: the embedded database is WebAssembly, and V8's optimising second tier for it
// costs ~60 MB of resident memory in an idle `berth serve` for code that is rarely hot.
//
// berth runs the JavaScript in dist/ (built by `npm install`, `npm start` and `npm test`; see
// scripts/build.ts) while that build is newer than every source file, and its TypeScript sources
// through tsx otherwise, so an edit is never run stale.
import { builtIsCurrent } from './build-state.js'

let cli
if (builtIsCurrent()) {
  cli = await import('../dist/cli/main.js')
} else {
  const { register } = await import('tsx/esm/api')
  register()
  cli = await import('../src/cli/main.ts')
}
process.exitCode = await cli.runCli(process.argv.slice(2))
