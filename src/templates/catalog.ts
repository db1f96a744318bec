import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { describeIssues, invalidInput, summarizeIssues } from '../domain/errors.ts'
import { placeholdersOf, type TemplateFile, templateFileSchema, templateServicesOf } from './template-file.ts'

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
  const services = templateServicesOf(t)
  // Where outputs may point: `PORT` in a one-service template, `SERVICE.PORT` in a multi-service one.
  const ports = new Set(
    services.flatMap((s) =>
      (s.ports ?? []).map((p) => (s.name === null ? '' : `${s.name}.`) + String(p.containerPort)),
    ),
  )
  const check = (where: string, text: string, allowed: string[]) => {
    for (const { kind, name } of placeholdersOf(text)) {
      if (!allowed.includes(kind)) problems.push(`${where}: {{${kind}…}} cannot be used here`)
      else if (kind === 'params' && !(name in t.params)) problems.push(`${where}: no parameter "${name}"`)
      else if (kind === 'secrets' && !(name in t.secrets)) problems.push(`${where}: no secret "${name}"`)
      else if (kind === 'deployment' && name !== 'name') problems.push(`${where}: only {{deployment.name}}`)
      else if ((kind === 'host' || kind === 'port') && !ports.has(name))
        problems.push(`${where}: no port ${name}`)
    }
  }
  for (const service of services) {
    const at = service.name === null ? '' : `service ${service.name}: `
    for (const [key, value] of Object.entries(service.env ?? {}))
      check(`${at}env ${key}`, value, ['params', 'secrets', 'deployment'])
    for (const [i, arg] of (service.command ?? []).entries())
      check(`${at}command[${i}]`, arg, ['params', 'deployment'])
    const checked = service.healthCheck?.port
    if (checked !== undefined && !(service.ports ?? []).some((p) => p.containerPort === checked))
      problems.push(`${at}healthCheck: port ${checked} is not published`)
  }
  if (t.services) {
    // The rest of what a multi-service spec must be (names, dependsOn, circles) is checked when a
    // spec is made from it; these are what a template alone can get wrong.
    const names = t.services.map((s) => s.name)
    for (const service of t.services)
      for (const dependency of service.dependsOn ?? [])
        if (!names.includes(dependency))
          problems.push(`service ${service.name}: no service named ${dependency}`)
    for (const [name, def] of Object.entries(t.secrets))
      if (def.rotate) problems.push(`secret "${name}": rotation runs in one-service templates only`)
  }
  for (const [key, value] of Object.entries(t.outputs))
    check(`output ${key}`, value, ['params', 'host', 'port'])
  for (const [name, def] of Object.entries(t.secrets)) {
    if (!credentialEnvOf(t, name)) problems.push(`secret "${name}": no env variable uses {{secrets.${name}}}`)
    // A rotation writes the new value as the whole variable.
    if (def.rotate && !credentialEnvOf(t, name, { exactly: true }))
      problems.push(
        `secret "${name}": a rotated secret needs an env variable that is exactly {{secrets.${name}}}`,
      )
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
  const hasStorage = services.some((s) => (s.volumes ?? []).some((v) => v.storage))
  for (const [name, size] of Object.entries(t.sizes)) {
    if (size.storageMb && !hasStorage)
      problems.push(`size "${name}": storageMb without a volume marked storage`)
  }
  return problems
}

/**
 * The env variable a secret's credential is read from: one whose value is exactly the secret, or
 * else the first whose value holds it (`admin:{{secrets.password}}`: the credential is then that
 * whole value, as its user types it). The first service that has one, for a multi-service template.
 */
export function credentialEnvOf(
  t: Pick<TemplateFile, 'service' | 'services'>,
  secret: string,
  options: { exactly?: boolean } = {},
): string | undefined {
  const envs = templateServicesOf(t).flatMap((service) => Object.entries(service.env ?? {}))
  const placeholder = `{{secrets.${secret}}}`
  const exact = envs.find(([, value]) => value.trim() === placeholder)
  if (exact || options.exactly) return exact?.[0]
  return envs.find(([, value]) => value.includes(placeholder))?.[0]
}
