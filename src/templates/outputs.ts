import type { Endpoint } from '../db/schema/deployments.ts'
import type { TemplateRef } from '../domain/spec.ts'
import { fillPlaceholders, placeholdersOf } from './template-file.ts'

// A template deployment's connection details: its outputs with `{{host:PORT}}` and
// `{{port:PORT}}` (`SERVICE.PORT` on a multi-service deployment) filled from where the container
// port answers now, its first replica's. An output whose port has no endpoint yet (the deployment
// is not running) is left out rather than shown half-filled.

export function outputsOf(ref: TemplateRef, endpoints: readonly Endpoint[]): Record<string, string> {
  const where = new Map<string, { host: string; port: string }>()
  for (const endpoint of endpoints) {
    const key =
      (endpoint.service === undefined ? '' : `${endpoint.service}.`) + String(endpoint.containerPort)
    if (where.has(key) || !URL.canParse(endpoint.url)) continue
    const url = new URL(endpoint.url)
    // A URL leaves out its scheme's default port (http on 80): it is the port all the same.
    const port = url.port || (url.protocol === 'http:' ? '80' : url.protocol === 'https:' ? '443' : '')
    where.set(key, { host: url.hostname, port })
  }
  const out: Record<string, string> = {}
  for (const [key, pattern] of Object.entries(ref.outputs)) {
    if (placeholdersOf(pattern).some((p) => !where.has(p.name))) continue
    out[key] = fillPlaceholders(pattern, (kind, port) => {
      const at = where.get(port)!
      return kind === 'host' ? at.host : at.port
    })
  }
  return out
}
