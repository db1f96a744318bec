import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { configSchema } from '../src/config/schema.ts'
import { repoRoot } from './helpers/server.ts'

// The README's config reference is what operators read: every key berth has must be in it.

/**
 * Dotted paths of the leaves of a config (an array is a leaf). An empty object is a section whose
 * keys are all optional without a default (`metrics`): it has no leaf of its own to list.
 */
function leafKeys(value: unknown, path: string[] = []): string[] {
  const isBranch = value !== null && typeof value === 'object' && !Array.isArray(value)
  if (!isBranch) return [path.join('.')]
  return Object.entries(value).flatMap(([key, child]) => leafKeys(child, [...path, key]))
}

describe('config reference in the README', () => {
  it('lists every key of the config, with its defaults applied', () => {
    const readme = readFileSync(`${repoRoot}README.md`, 'utf8')
    const listed = new Set([...readme.matchAll(/^\| `([^`]+)` \|/gm)].map((match) => match[1]))
    const keys = leafKeys(configSchema.parse({}))
    assert.ok(keys.length > 30, `the config has ${keys.length} keys`)
    assert.deepEqual(
      keys.filter((key) => !listed.has(key)),
      [],
      'keys missing from the README config table',
    )
  })
})
