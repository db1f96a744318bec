#!/usr/bin/env node
// berth runs its TypeScript sources directly through tsx: no build step between
// `npm install` and `npm start`.
import { register } from 'tsx/esm/api'

register()
const { runCli } = await import('../src/cli/main.ts')
process.exitCode = await runCli(process.argv.slice(2))
