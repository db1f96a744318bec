import { type ChildProcess, spawn } from 'node:child_process'
import { berthBin, repoRoot } from './server.ts'

// `berth agent` as a real process, its output kept for failure messages. Every process started is
// in `started`, for the suite to kill whatever is still running when it ends.

export interface AgentProcess {
  child: ChildProcess
  output(): string
  exited: Promise<void>
}

export const started: ChildProcess[] = []

export function startAgentProcess(
  server: string,
  dataDir: string,
  args: string[],
  env: Record<string, string>,
): AgentProcess {
  let output = ''
  const child = spawn(
    process.execPath,
    [berthBin, 'agent', '--server', server, '--data-dir', dataDir, ...args],
    {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  started.push(child)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return { child, output: () => output, exited }
}

/** Kills every agent still running (SIGKILL). */
export function killAgents(): void {
  for (const child of started.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
}
