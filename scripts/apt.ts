import { execFileSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

// What tests need from Debian's packages, installed when missing (as root, on machines where the
// package archive is reachable), so that `npm test` sets up its own tools.

export function onPath(command: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, command), constants.X_OK)
      return true
    } catch {
      // not in this directory
    }
  }
  return false
}

let aptUpdated = false
export function aptInstall(packages: string[]): void {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  if (!aptUpdated) {
    execFileSync('apt-get', ['update'], { stdio: 'inherit', env })
    aptUpdated = true
  }
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], {
    stdio: 'inherit',
    env,
  })
}

/** `promtool` (Debian's prometheus package), for checking /metrics the way Prometheus would. */
export function ensurePromtool(): string {
  if (!onPath('promtool')) {
    if (process.getuid?.() !== 0) throw new Error('promtool is not installed and installing it needs root')
    aptInstall(['prometheus'])
  }
  return 'promtool'
}
