import type { Endpoint } from '../db/schema/deployments.ts'
import type { TemplateRef } from '../domain/spec.ts'
import { fillPlaceholders, placeholdersOf } from './template-file.ts'

// A template deployment's connection details: its outputs with `{{host:PORT}}` and
// `{{port:PORT}}` filled from where the container port answers now. An output whose port has no
// endpoint yet (the deployment is not running) is left out rather than shown half-filled.

export function outputsOf(ref: TemplateRef, endpoints: readonly Endpoint[]): Record<string, string> {
  const where = new Map<string, URL>()
  for (const endpoint of endpoints) {
    if (!where.has(String(endpoint.containerPort)))
      where.set(String(endpoint.containerPort), new URL(endpoint.url))
  }
  const out: Record<string, string> = {}
  for (const [key, pattern] of Object.entries(ref.outputs)) {
    if (placeholdersOf(pattern).some((p) => !where.has(p.name))) continue
    out[key] = fillPlaceholders(pattern, (kind, port) => {
      const url = where.get(port)!
      return kind === 'host' ? url.hostname : url.port
    })
  }
  return out
}
