import { spawnSync } from 'node:child_process'

/**
 * What `promtool check metrics` (Prometheus's own linter) says about a /metrics text: the empty
 * string when it finds nothing. `npm test` installs promtool before the tests start.
 */
export function promtoolProblems(metrics: string): string {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' })
  if (result.error) throw result.error
  return `${result.stdout}${result.stderr}`.trim()
}
