import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { describeIssues, invalidInput, summarizeIssues } from '../domain/errors.ts'
import { placeholdersOf, type TemplateFile, templateFileSchema } from './template-file.ts'

// The template catalog: the files in the repository's templates/ directory and in each directory
// the operator adds (`templates.dirs`), read and checked once at start. A bad file stops berth with
// a message naming the file and the problem, rather than failing a user's deploy later.

/** templates/ at the repository root (from src/templates/ and from dist/templates/ alike). */
export const BUILT_IN_TEMPLATES = fileURLToPath(new URL('../../templates/', import.meta.url))

export interface Catalog {
  list(): TemplateFile[]
  get(id: string): TemplateFile | undefined
}

export function loadCatalog(dirs: string[]): Catalog {
  const byId = new Map<string, TemplateFile>()
  for (const dir of dirs) {
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
      .sort()
    for (const file of files) {
      const path = join(dir, file)
      const template = readTemplateFile(path)
      if (byId.has(template.id)) throw invalidInput(`template ${path}: id "${template.id}" is already taken`)
      byId.set(template.id, template)
    }
  }
  return {
    list: () => [...byId.values()].sort((a, b) => a.id.localeCompare(b.id)),
    get: (id) => byId.get(id),
  }
}

export function readTemplateFile(path: string): TemplateFile {
  let raw: unknown
  try {
    raw = parse(readFileSync(path, 'utf8'))
  } catch (error) {
    throw invalidInput(`template ${path}: cannot parse: ${(error as Error).message}`)
  }
  const parsed = templateFileSchema.safeParse(raw)
  if (!parsed.success) {
    throw invalidInput(`template ${path}: ${summarizeIssues(describeIssues(parsed.error.issues))}`)
  }
  const problems = problemsOf(parsed.data)
  if (problems.length > 0) throw invalidInput(`template ${path}: ${problems.join('; ')}`)
  return parsed.data
}

/** What the schema cannot see: placeholders naming nothing, secrets with no home, bad patterns. */
function problemsOf(t: TemplateFile): string[] {
  const problems: string[] = []
  const ports = new Set((t.service.ports ?? []).map((p) => String(p.containerPort)))
  const check = (where: string, text: string, allowed: string[]) => {
    for (const { kind, name } of placeholdersOf(text)) {
      if (!allowed.includes(kind)) problems.push(`${where}: {{${kind}…}} cannot be used here`)
      else if (kind === 'params' && !(name in t.params)) problems.push(`${where}: no parameter "${name}"`)
      else if (kind === 'secrets' && !(name in t.secrets)) problems.push(`${where}: no secret "${name}"`)
      else if ((kind === 'host' || kind === 'port') && !ports.has(name))
        problems.push(`${where}: no port ${name}`)
    }
  }
  for (const [key, value] of Object.entries(t.service.env ?? {}))
    check(`env ${key}`, value, ['params', 'secrets'])
  for (const [i, arg] of (t.service.command ?? []).entries()) check(`command[${i}]`, arg, ['params'])
  for (const [key, value] of Object.entries(t.outputs))
    check(`output ${key}`, value, ['params', 'host', 'port'])
  for (const [name, def] of Object.entries(t.secrets)) {
    if (!credentialEnvOf(t, name))
      problems.push(`secret "${name}": no env variable is exactly {{secrets.${name}}}`)
    if (def.rotate && !def.rotate.some((arg) => arg.includes(`{{secrets.${name}}}`)))
      problems.push(`secret "${name}": its rotate command never uses {{secrets.${name}}}`)
    for (const [i, arg] of (def.rotate ?? []).entries()) {
      check(`secret "${name}" rotate[${i}]`, arg, ['params', 'secrets'])
      if (placeholdersOf(arg).some((p) => p.kind === 'secrets' && p.name !== name))
        problems.push(`secret "${name}" rotate[${i}]: only {{secrets.${name}}} may be used here`)
    }
  }
  for (const [name, def] of Object.entries(t.params)) {
    if (def.type !== 'string') continue
    try {
      new RegExp(def.pattern)
    } catch {
      problems.push(`parameter "${name}": pattern is not a regular expression`)
    }
  }
  const hasStorage = (t.service.volumes ?? []).some((v) => v.storage)
  for (const [name, size] of Object.entries(t.sizes)) {
    if (size.storageMb && !hasStorage)
      problems.push(`size "${name}": storageMb without a volume marked storage`)
  }
  const checked = t.service.healthCheck?.port
  if (checked !== undefined && !ports.has(String(checked)))
    problems.push(`healthCheck: port ${checked} is not published`)
  return problems
}

/** The env variable whose value is exactly the secret: where its credential lives. */
export function credentialEnvOf(t: Pick<TemplateFile, 'service'>, secret: string): string | undefined {
  return Object.entries(t.service.env ?? {}).find(
    ([, value]) => value.trim() === `{{secrets.${secret}}}`,
  )?.[0]
}
