import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { BerthError } from '../../domain/errors.ts'

// `berth deploy` flags (and an optional spec file) → the DeploymentSpec sent to the server. Only
// the flags' own syntax is checked here; the server validates the spec and names bad fields.

export interface DeployFlags {
  file?: string
  name?: string
  image?: string
  port?: string[]
  env?: string[]
  cpus?: string
  memory?: string
  replicas?: string
  label?: string[]
  provider?: string
  command?: string
  nft?: string
}

type Spec = Record<string, unknown>

const usage = (message: string) => new BerthError('invalid_input', message)

/** `8080`, `8080/tcp`, `53/udp`. */
export function parsePort(value: string): { containerPort: number; protocol: 'tcp' | 'udp' } {
  const match = /^(\d{1,5})(?:\/(tcp|udp))?$/i.exec(value.trim())
  const port = match ? Number(match[1]) : Number.NaN
  if (!match || port < 1 || port > 65535)
    throw usage(`--port ${value}: expected <containerPort>[/tcp|/udp], e.g. 8080 or 53/udp`)
  return { containerPort: port, protocol: (match[2]?.toLowerCase() ?? 'tcp') as 'tcp' | 'udp' }
}

/** `KEY=VALUE`; the value may contain `=` and may be empty. */
export function parseKeyValue(value: string, flag: string): [string, string] {
  const eq = value.indexOf('=')
  if (eq <= 0) throw usage(`${flag} ${value}: expected KEY=VALUE`)
  return [value.slice(0, eq), value.slice(eq + 1)]
}

/**
 * A JSON array of strings is taken as is; anything else is split into words like a shell would
 * (quotes and backslashes group, nothing is expanded), so the image needs no shell.
 */
export function parseCommand(value: string): string[] {
  const trimmed = value.trim()
  if (trimmed.startsWith('[')) {
    let parsed: unknown
    try {
      parsed = JSON.parse(trimmed)
    } catch {
      throw usage(`--command: not valid JSON: ${value}`)
    }
    if (!Array.isArray(parsed) || !parsed.every((part) => typeof part === 'string'))
      throw usage('--command: a JSON command must be an array of strings')
    return parsed
  }
  const words: string[] = []
  let word = ''
  let inWord = false
  let quote: '"' | "'" | undefined
  for (let i = 0; i < trimmed.length; i++) {
    const c = trimmed[i]!
    if (quote === "'") {
      if (c === "'") quote = undefined
      else word += c
    } else if (
      c === '\\' &&
      i + 1 < trimmed.length &&
      (quote === undefined || '"\\$`'.includes(trimmed[i + 1]!))
    ) {
      word += trimmed[++i]
      inWord = true
    } else if (quote === '"') {
      if (c === '"') quote = undefined
      else word += c
    } else if (c === '"' || c === "'") {
      quote = c
      inWord = true
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word)
      word = ''
      inWord = false
    } else {
      word += c
      inWord = true
    }
  }
  if (quote) throw usage(`--command: unterminated ${quote} quote`)
  if (inWord) words.push(word)
  if (words.length === 0) throw usage('--command: empty command')
  return words
}

/**
 * `--nft chainId:contract:tokenId[:standard]`, standard erc721 (the default) or erc1155. The token
 * id stays a decimal string: ids are uint256 and do not fit a JS number.
 */
export function parseNft(value: string): {
  chainId: number
  contract: string
  tokenId: string
  standard: 'erc721' | 'erc1155'
} {
  const match = /^(\d{1,10}):(0x[0-9a-fA-F]{40}):(0|[1-9]\d{0,77})(?::(erc721|erc1155))?$/i.exec(value.trim())
  if (!match)
    throw usage(
      `--nft ${value}: expected <chainId>:<contract 0x…>:<tokenId>[:erc721|erc1155], e.g. 1:0xabc…:42`,
    )
  return {
    chainId: Number(match[1]),
    contract: match[2]!.toLowerCase(),
    tokenId: match[3]!,
    standard: (match[4]?.toLowerCase() ?? 'erc721') as 'erc721' | 'erc1155',
  }
}

/** A spec file in JSON or YAML (YAML parses JSON too; .json files get the stricter parser). */
export function readSpecFile(path: string): Spec {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw usage(`cannot read ${path}: ${(error as Error).message}`)
  }
  let parsed: unknown
  try {
    parsed = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text)
  } catch (error) {
    throw usage(`cannot parse ${path}: ${(error as Error).message}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw usage(`${path}: a deployment spec must be a mapping (name, image, …)`)
  return parsed as Spec
}

function parseNumber(value: string, flag: string, integer: boolean): number {
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n <= 0)
    throw usage(`${flag} ${value}: expected a positive ${integer ? 'integer' : 'number'}`)
  return n
}

function record(value: unknown, field: string): Record<string, unknown> {
  if (value === undefined) return {}
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw usage(`spec field ${field} must be a mapping`)
  return value as Record<string, unknown>
}

/**
 * Flags override the file: scalar flags replace the file's value, `--port` replaces its port list,
 * `--env` and `--label` override per key, `--cpus`/`--memory` override within `resources`.
 */
export function buildSpec(flags: DeployFlags, fileSpec: Spec = {}): Spec {
  const spec: Spec = { ...fileSpec }
  if (flags.name !== undefined) spec.name = flags.name
  if (flags.image !== undefined) spec.image = flags.image
  if (flags.provider !== undefined) spec.provider = flags.provider
  if (flags.command !== undefined) spec.command = parseCommand(flags.command)
  if (flags.replicas !== undefined) spec.replicas = parseNumber(flags.replicas, '--replicas', true)
  if (flags.port?.length) spec.ports = flags.port.map(parsePort)
  if (flags.env?.length) {
    spec.env = {
      ...record(spec.env, 'env'),
      ...Object.fromEntries(flags.env.map((e) => parseKeyValue(e, '--env'))),
    }
  }
  if (flags.label?.length) {
    spec.labels = {
      ...record(spec.labels, 'labels'),
      ...Object.fromEntries(flags.label.map((l) => parseKeyValue(l, '--label'))),
    }
  }
  if (flags.cpus !== undefined || flags.memory !== undefined) {
    const resources = { ...record(spec.resources, 'resources') }
    if (flags.cpus !== undefined) resources.cpus = parseNumber(flags.cpus, '--cpus', false)
    if (flags.memory !== undefined) resources.memoryMb = parseNumber(flags.memory, '--memory', true)
    spec.resources = resources
  }
  if (flags.nft !== undefined) spec.nft = parseNft(flags.nft)
  if (spec.name === undefined) throw usage('a deployment needs a name: pass --name or set name in --file')
  // A multi-service spec (services in --file) names its images per service.
  if (spec.image === undefined && spec.services === undefined)
    throw usage('a deployment needs an image: pass --image, or set image or services in --file')
  return spec
}
