#!/usr/bin/env -S node --liftoff-only
// --liftoff-only: the embedded database is WebAssembly, and V8's optimising second tier for it
// costs ~60 MB of resident memory in an idle `berth serve` for code that is rarely hot.
// berth runs its TypeScript sources directly through tsx: no build step between
// `npm install` and `npm start`.
import { register } from 'tsx/esm/api'

register()
const { runCli } = await import('../src/cli/main.ts')
process.exitCode = await runCli(process.argv.slice(2))
