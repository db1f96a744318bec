import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { BerthError, describeIssues, summarizeIssues } from '../domain/errors.ts'
import { type Config, configSchema } from './schema.ts'

// The only module that reads process.env (callers pass it in). Precedence: file < env < flags.

type Plain = Record<string, unknown>

export interface ConfigSources {
  file?: string
  env?: Record<string, string | undefined>
  flags?: Plain
}

export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env
  const fromFile = sources.file ? readConfigFile(sources.file) : {}
  const merged = deepMerge(deepMerge(fromFile, configFromEnv(env)), stripUndefined(sources.flags ?? {}))
  const result = configSchema.safeParse(merged)
  if (!result.success) {
    const issues = describeIssues(result.error.issues)
    throw new BerthError('invalid_input', `invalid configuration: ${summarizeIssues(issues)}`, {
      details: issues,
    })
  }
  return result.data
}

function readConfigFile(path: string): Plain {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (cause) {
    throw new BerthError('invalid_input', `cannot read config file ${path}: ${(cause as Error).message}`, {
      cause,
    })
  }
  try {
    const parsed: unknown = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text)
    if (parsed === null || parsed === undefined) return {}
    if (typeof parsed !== 'object' || Array.isArray(parsed))
      throw new Error('the top level must be a mapping')
    return parsed as Plain
  } catch (cause) {
    throw new BerthError('invalid_input', `cannot parse config file ${path}: ${(cause as Error).message}`, {
      cause,
    })
  }
}

/**
 * `BERTH_DATA_DIR` → dataDir, `BERTH_RECONCILER__LEASE_SECONDS` → reconciler.leaseSeconds,
 * `DATABASE_URL` → databaseUrl. `X_FILE` reads the value of X from a file (for secrets), except
 * `BERTH_MASTER_KEY_FILE`, which is the path of the master key file itself.
 */
export function configFromEnv(env: Record<string, string | undefined>): Plain {
  const out: Plain = {}
  for (const [rawName, rawValue] of Object.entries(env)) {
    // An empty variable means "not set", never "0" or "false".
    if (rawValue === undefined || rawValue === '') continue
    let name = rawName
    let value = rawValue
    // The master key file is a path berth reads (and a rotation rewrites), not a secret value.
    const isPath = name === 'BERTH_MASTER_KEY_FILE'
    if (!isPath && name.endsWith('_FILE') && (name.startsWith('BERTH_') || name === 'DATABASE_URL_FILE')) {
      name = name.slice(0, -'_FILE'.length)
      value = readSecretFile(rawName, rawValue)
    }
    if (name === 'DATABASE_URL') {
      out.databaseUrl = value
      continue
    }
    if (name === 'DOCKER_HOST') {
      // Docker's own variable, unless berth's own name for the setting is given as well.
      if (env.BERTH_PROVIDERS__DOCKER__HOST === undefined || env.BERTH_PROVIDERS__DOCKER__HOST === '')
        setPath(out, ['providers', 'docker', 'host'], value)
      continue
    }
    if (!name.startsWith('BERTH_')) continue
    const path = envNameToPath(name.slice('BERTH_'.length))
    // CLI-client settings share the prefix but are not server config.
    if (path[0] === 'privateKey' || path[0] === 'server' || path[0] === 'token') continue
    setPath(out, path, value)
  }
  return out
}

export function envNameToPath(rest: string): string[] {
  return rest
    .split('__')
    .map((part) => part.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()))
}

/** The value of a `*_FILE` variable: the file's content, trimmed; a clear error when unreadable. */
export function readSecretFile(name: string, path: string): string {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch (cause) {
    throw new BerthError('invalid_input', `cannot read ${name} (${path}): ${(cause as Error).message}`, {
      cause,
    })
  }
}

function setPath(target: Plain, path: string[], value: unknown): void {
  let node = target
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {}
    node = node[key] as Plain
  }
  node[path[path.length - 1]!] = value
}

function isPlain(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function deepMerge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base }
  for (const [key, value] of Object.entries(over)) {
    out[key] = isPlain(value) && isPlain(out[key]) ? deepMerge(out[key] as Plain, value) : value
  }
  return out
}

function stripUndefined(value: Plain): Plain {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined))
}

export function publicUrlOf(config: Pick<Config, 'publicUrl' | 'port'>): URL {
  return new URL(config.publicUrl ?? `http://localhost:${config.port}`)
}
