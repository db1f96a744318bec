import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, it } from 'node:test'

// Rules of the house for src/, checked on every run:
// - Modules import each other in one direction only: no file reaches itself again through its
//   imports. A circle makes the order of module initialisation depend on which file is loaded
//   first, and ties modules that should change alone. Type-only imports count too: they tie the
//   modules' designs together just the same.
// - No file is over 400 lines: a file past that is a module waiting to be split.

const MAX_LINES = 400

const srcDir = resolve(import.meta.dirname, '..', 'src')

function typescriptFiles(dir: string): string[] {
  const out: string[] = []
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry)
    if (statSync(path).isDirectory()) out.push(...typescriptFiles(path))
    else if (entry.endsWith('.ts')) out.push(path)
  }
  return out
}
const sourceFiles = (dir: string) => typescriptFiles(dir).filter((f) => !f.endsWith('.test.ts'))

/** Relative imports of a file: static imports, re-exports and import() with a literal path. */
export function importsOf(text: string): string[] {
  const pattern = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm
  return [...text.matchAll(pattern)].map((match) => match[1]!)
}

/** Every circle in the graph, each as the files on it (Tarjan's strongly connected components). */
export function findCircles(graph: Map<string, string[]>): string[][] {
  let counter = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const circles: string[][] = []
  const visit = (node: string) => {
    index.set(node, counter)
    low.set(node, counter)
    counter++
    stack.push(node)
    onStack.add(node)
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next)
        low.set(node, Math.min(low.get(node)!, low.get(next)!))
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!))
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = []
      let member: string
      do {
        member = stack.pop()!
        onStack.delete(member)
        component.push(member)
      } while (member !== node)
      const selfImport = (graph.get(node) ?? []).includes(node)
      if (component.length > 1 || selfImport) circles.push(component.sort())
    }
  }
  for (const node of graph.keys()) if (!index.has(node)) visit(node)
  return circles
}

describe('house rules', () => {
  it('finds a circle when there is one, and none in a line', () => {
    const circle = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ])
    assert.deepEqual(findCircles(circle), [['a', 'b', 'c']])
    assert.deepEqual(
      findCircles(
        new Map([
          ['a', ['b']],
          ['b', ['c']],
          ['c', []],
        ]),
      ),
      [],
    )
    assert.deepEqual(
      importsOf(
        "import { x } from './x.ts'\nimport type { Y } from '../y.ts'\nexport * from './z.ts'\nconst w = await import('./w.ts')\nimport 'node:fs'",
      ),
      ['./x.ts', '../y.ts', './z.ts', './w.ts'],
    )
  })

  it('has no import circle in src/', () => {
    const files = sourceFiles(srcDir)
    const graph = new Map<string, string[]>()
    for (const file of files) {
      const targets = importsOf(readFileSync(file, 'utf8')).map((spec) => resolve(dirname(file), spec))
      for (const target of targets) assert.ok(files.includes(target), `${file} imports ${target}, not a file`)
      graph.set(file, targets)
    }
    const circles = findCircles(graph).map((c) => c.map((f) => relative(srcDir, f)))
    assert.deepEqual(circles, [], `import circles:\n${circles.map((c) => c.join(' → ')).join('\n')}`)
  })

  it('has no file in src/ over 400 lines', () => {
    const long = typescriptFiles(srcDir)
      .map((file) => ({
        file: relative(srcDir, file),
        lines: readFileSync(file, 'utf8').split('\n').length - 1,
      }))
      .filter(({ lines }) => lines > MAX_LINES)
    assert.deepEqual(long, [])
  })
})
