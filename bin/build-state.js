import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

// Whether dist/ holds a complete build (scripts/build.ts stamps it last) that is newer than every
// file under src/. Plain JavaScript: bin/berth.js reads it before any TypeScript can be loaded.

export const repoRoot = fileURLToPath(new URL('../', import.meta.url))
export const buildStamp = join(repoRoot, 'dist', '.build-stamp')

export function builtIsCurrent() {
  let builtAt
  try {
    builtAt = statSync(buildStamp).mtimeMs
  } catch {
    return false
  }
  const src = join(repoRoot, 'src')
  for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && statSync(join(entry.parentPath, entry.name)).mtimeMs > builtAt) return false
  }
  return true
}
