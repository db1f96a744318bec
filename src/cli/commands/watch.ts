import { ApiError, type HttpClient } from '../../client/http-client.ts'
import { followSse } from '../../client/sse.ts'
import { BerthError } from '../../domain/errors.ts'
import type { Deployment, DeploymentEvent } from '../output.ts'

// Finding a deployment by what the user typed, and watching its event log: the history first, then
// the live stream resumed after the last event seen, so nothing is missed or shown twice.

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const pageSize = 100

export const deploymentPath = (id: string) => `/v1/deployments/${encodeURIComponent(id)}`

/** A full id, a name, or an id prefix as `berth ls` shows it. */
export async function resolveDeployment(client: HttpClient, ref: string): Promise<Deployment> {
  if (uuidPattern.test(ref)) return client.get<Deployment>(deploymentPath(ref))
  const all: Deployment[] = []
  for (let offset = 0; ; offset += pageSize) {
    const page = await client.get<{ items: Deployment[]; total: number }>('/v1/deployments', {
      query: { limit: pageSize, offset },
    })
    all.push(...page.items)
    if (page.items.length < pageSize || all.length >= page.total) break
  }
  const live = (d: Deployment) => d.status !== 'deleted'
  const byName = all.filter((d) => d.name === ref)
  const named = byName.filter(live).length ? byName.filter(live) : byName
  if (named.length === 1) return named[0]!
  const byPrefix = named.length ? [] : all.filter((d) => d.id.startsWith(ref.toLowerCase()))
  if (byPrefix.length === 1) return byPrefix[0]!
  const matches = named.length ? named : byPrefix
  if (matches.length > 1) {
    throw new BerthError('conflict', `"${ref}" matches ${matches.length} deployments: use one of their ids`, {
      details: matches.map((d) => ({ id: d.id, name: d.name, status: d.status })),
    })
  }
  throw new BerthError('not_found', `deployment "${ref}" not found`)
}

const eventPageSize = 1000

/** Every event after `after`, page by page. */
export async function listEvents(client: HttpClient, id: string, after = 0): Promise<DeploymentEvent[]> {
  const all: DeploymentEvent[] = []
  for (let from = after; ; ) {
    const { items } = await client.get<{ items: DeploymentEvent[] }>(`${deploymentPath(id)}/events`, {
      query: { after: from, limit: eventPageSize },
    })
    all.push(...items)
    const next = items.reduce((max, e) => Math.max(max, e.seq), from)
    if (items.length < eventPageSize || next === from) return all
    from = next
  }
}

export interface FollowOptions {
  /** Yield only events after this sequence number (0: all of them). */
  after?: number
  signal?: AbortSignal
}

/** History after `after`, then live events, in sequence order, until the caller stops. */
export async function* followEventStream(
  client: HttpClient,
  id: string,
  options: FollowOptions = {},
): AsyncGenerator<DeploymentEvent> {
  let last = options.after ?? 0
  for (const event of await listEvents(client, id, last)) {
    if (event.seq <= last) continue
    last = event.seq
    yield event
  }
  const stream = followSse({
    lastEventId: String(last),
    signal: options.signal,
    open: (lastEventId, signal) =>
      client.open(`${deploymentPath(id)}/events`, {
        query: { follow: 1 },
        headers: { accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
        signal,
      }),
  })
  for await (const message of stream) {
    if (message.event !== 'deployment') continue
    let event: DeploymentEvent
    try {
      event = JSON.parse(message.data) as DeploymentEvent
    } catch (cause) {
      throw new BerthError('internal', 'the event stream sent a message that is not JSON', { cause })
    }
    // The stream may replay what the history already showed; sequence numbers have no gaps.
    if (event.seq <= last) continue
    last = event.seq
    yield event
  }
}

export type Outcome = 'ok' | 'failed'

/** Decides from one event whether the wait is over; `undefined` keeps waiting. */
export type Goal = (event: DeploymentEvent) => Outcome | undefined

export const goals = {
  running: (e: DeploymentEvent): Outcome | undefined => {
    if (e.status === 'running') return 'ok'
    if (e.status === 'failed' || e.status === 'stopped' || e.status === 'deleted') return 'failed'
    return undefined
  },
  stopped: (e: DeploymentEvent): Outcome | undefined => {
    if (e.status === 'stopped') return 'ok'
    if (e.status === 'failed' || e.status === 'deleted') return 'failed'
    return undefined
  },
  deleted: (e: DeploymentEvent): Outcome | undefined => (e.status === 'deleted' ? 'ok' : undefined),
} satisfies Record<string, Goal>

export interface WaitOptions extends FollowOptions {
  onEvent?: (event: DeploymentEvent) => void
}

/** Follows events after `after` until `goal` decides; throws when `signal` aborts (a timeout). */
export async function waitFor(
  client: HttpClient,
  id: string,
  goal: Goal,
  options: WaitOptions = {},
): Promise<Outcome> {
  for await (const event of followEventStream(client, id, options)) {
    options.onEvent?.(event)
    const outcome = goal(event)
    if (outcome) return outcome
  }
  throw new BerthError('internal', 'the event stream ended')
}

/** The current last sequence number, so a wait counts only what follows a request. */
export async function lastSeq(client: HttpClient, id: string): Promise<number> {
  const items = await listEvents(client, id)
  return items.reduce((max, e) => Math.max(max, e.seq), 0)
}

export function isNotFound(error: unknown): boolean {
  return error instanceof ApiError && error.code === 'not_found'
}
