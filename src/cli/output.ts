// Rendering for humans: tables, ages, the one-line live progress, deployment details. Nothing here
// decides what to print, only how.

export interface OutStream {
  write(text: string): unknown
  isTTY?: boolean
  columns?: number
}

export interface Endpoint {
  containerPort: number
  protocol: string
  url: string
}

export interface Deployment {
  id: string
  name: string
  owner: string
  status: string
  desiredState: string
  provider: string
  spec: Record<string, unknown> & {
    image?: string
    replicas?: number
    template?: { id: string; size: string }
  }
  progress: { stage: string; percent: number; resource?: { stage: string; percent: number } }
  endpoints: Endpoint[]
  /** A template deployment's connection details. */
  connection?: Record<string, string>
  stopReason?: string | null
  error?: unknown
  waiting?: { reason: string; place?: number }
  createdAt: string
  updatedAt: string
}

/** `pending (waiting for capacity, #2 in the queue)` for a start that waits; the status otherwise. */
function statusOf(d: Deployment): string {
  if (!d.waiting) return d.status
  const why = d.waiting.reason === 'insufficient_capacity' ? 'waiting for capacity' : d.waiting.reason
  return `${d.status} (${why}${d.waiting.place === undefined ? '' : `, #${d.waiting.place} in the queue`})`
}

export interface DeploymentEvent {
  seq: number
  type: string
  status?: string | null
  stage?: string | null
  percent?: number | null
  message?: string | null
  at: string
}

/** Micro-USD as dollars with six decimals: `$1.250000`, `-$0.000100`. */
export function formatUsd(micro: string | bigint): string {
  const value = BigInt(micro)
  const magnitude = value < 0n ? -value : value
  return `${value < 0n ? '-' : ''}$${magnitude / 1_000_000n}.${(magnitude % 1_000_000n).toString().padStart(6, '0')}`
}

export function shortId(id: string): string {
  return id.slice(0, 8)
}

export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)),
  )
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`
}

/** `42s`, `5m`, `3h`, `2d`: how long ago, to one unit like `docker ps`. */
export function formatAge(from: Date | string, now: Date = new Date()): string {
  const seconds = Math.max(0, Math.floor((now.getTime() - new Date(from).getTime()) / 1000))
  if (seconds < 60) return `${seconds}s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`
  return `${Math.floor(seconds / 86400)}d`
}

export function formatProgress(percent: number, stage: string): string {
  return `[${String(percent).padStart(3)}%] ${stage}`
}

/** A deployment's error field as text, whatever shape the server gave it. */
export function describeError(error: unknown): string | undefined {
  if (error === undefined || error === null || error === '') return undefined
  if (typeof error === 'string') return error
  if (typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string')
    return (error as { message: string }).message
  return JSON.stringify(error)
}

/**
 * Live progress. On a terminal one line is redrawn in place; elsewhere (a pipe, a CI log) each new
 * line is printed once, so logs stay readable.
 */
export function createProgress(out: OutStream) {
  let last = ''
  let drawn = false
  return {
    update(line: string) {
      if (line === last) return
      last = line
      if (out.isTTY) {
        out.write(`\r\x1b[2K${line}`)
        drawn = true
      } else {
        out.write(`${line}\n`)
      }
    },
    /** Ends the live line so what follows starts on a fresh one. */
    done() {
      if (drawn) out.write('\n')
      drawn = false
    },
  }
}

export function formatDeploymentRow(d: Deployment, now: Date): string[] {
  return [
    shortId(d.id),
    d.name,
    statusOf(d),
    `${d.progress?.percent ?? 0}%`,
    d.provider,
    formatAge(d.createdAt, now),
  ]
}

export const deploymentTableHeaders = ['ID', 'NAME', 'STATUS', 'STAGE%', 'PROVIDER', 'AGE']

/** `db (postgres:16), api (app:1) × 2`: a multi-service spec's services, as the API gives them. */
function servicesOf(spec: Record<string, unknown> | undefined): string | undefined {
  if (!Array.isArray(spec?.services)) return undefined
  return (spec.services as Array<{ name?: unknown; image?: unknown; replicas?: unknown }>)
    .map((s) => `${String(s.name)} (${String(s.image)})${Number(s.replicas) > 1 ? ` × ${s.replicas}` : ''}`)
    .join(', ')
}

export function formatDeployment(d: Deployment, now: Date = new Date()): string {
  const rows: Array<[string, string | undefined]> = [
    ['ID', d.id],
    ['Name', d.name],
    [
      'Status',
      d.desiredState && d.desiredState !== d.status && !d.waiting
        ? `${d.status} (desired: ${d.desiredState})`
        : statusOf(d),
    ],
    ['Progress', d.progress ? formatProgress(d.progress.percent, d.progress.stage) : undefined],
    ['Provider', d.provider],
    ['Image', typeof d.spec?.image === 'string' ? d.spec.image : undefined],
    ['Replicas', d.spec?.replicas === undefined ? undefined : String(d.spec.replicas)],
    ['Services', servicesOf(d.spec)],
    ['Owner', d.owner],
    ['Stop reason', d.stopReason ?? undefined],
    ['Error', describeError(d.error)],
    ['Created', `${d.createdAt} (${formatAge(d.createdAt, now)} ago)`],
    ['Updated', d.updatedAt],
  ]
  const width = Math.max(...rows.map(([label]) => label.length)) + 1
  let text = ''
  for (const [label, value] of rows) {
    if (value !== undefined && value !== '') text += `${`${label}:`.padEnd(width)} ${value}\n`
  }
  text += 'Endpoints:'
  if (!d.endpoints?.length) return `${text} none\n`
  text += '\n'
  for (const e of d.endpoints) text += `  ${e.containerPort}/${e.protocol}  ${e.url}\n`
  return text
}

export function formatEvent(e: DeploymentEvent): string {
  const parts = [String(e.seq).padStart(4), e.at, e.type]
  if (e.status) parts.push(`status=${e.status}`)
  if (e.stage) parts.push(formatProgress(e.percent ?? 0, e.stage))
  if (e.message) parts.push(e.message)
  return parts.join('  ')
}
