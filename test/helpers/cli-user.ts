import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { berthBin, repoRoot } from './server.ts'

// A user's shell for end-to-end tests of the `berth` CLI: its own home and config dir, the env
// it is given and nothing of the test runner's, and every process it starts tracked so none
// outlives the suite.

// Every CLI process a test starts, so none outlives the suite even when a test fails midway.
export const children = new Set<ChildProcess>()
export const commandTimeoutMs = 60_000

/** A user's shell: their own config dir and wallet key, nothing inherited from berth's test env. */
export function createUser(env: Record<string, string> = {}) {
  const home = mkdtempSync(join(tmpdir(), 'berth-cli-home-'))
  const baseEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    XDG_CONFIG_HOME: join(home, 'config'),
    ...env,
  }
  const spawnCli = (args: string[], extra: Record<string, string> = {}) => {
    const child = spawn(process.execPath, [berthBin, ...args], {
      cwd: repoRoot,
      env: { ...baseEnv, ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.add(child)
    child.once('exit', () => children.delete(child))
    return child
  }
  /** Runs `berth <args>` to completion; one that hangs is killed and reported as such. */
  const run = (args: string[], extra: Record<string, string> = {}) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawnCli(args, extra)
      let stdout = ''
      let stderr = ''
      const timer = setTimeout(() => {
        stderr += `\n[test: berth ${args.join(' ')} still running after ${commandTimeoutMs} ms; killed]`
        child.kill('SIGKILL')
      }, commandTimeoutMs)
      child.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString()
      })
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString()
      })
      child.on('close', (code) => {
        clearTimeout(timer)
        resolve({ code, stdout, stderr })
      })
    })
  return { home, configDir: join(home, 'config', 'berth'), run, spawnCli }
}
