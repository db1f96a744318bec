import type { KeyObject } from 'node:crypto'
import type { Counter } from 'prom-client'
import type { Database } from '../db/client.ts'
import { createGroupCommit } from '../db/group-commit.ts'
import { BerthError, describeIssues, invalidInput, summarizeIssues, unauthorized } from '../domain/errors.ts'
import { agentSignatureValid, publicKeyObjectOf } from './agent-key.ts'
import { createHeartbeatWriter, unknownNode } from './heartbeat-writer.ts'
import { heartbeatSchema } from './node-schemas.ts'

// The heartbeat hot path: parse, check the signature with the node's enrolled key, check the time,
// then hand the write to the group commit. Nothing is written for a refused heartbeat, and every
// outcome is counted.

/** The header carrying the agent's Ed25519 signature (base64) over the exact body bytes. */
export const SIGNATURE_HEADER = 'berth-signature'

export type HeartbeatOutcomeLabel =
  | 'accepted'
  | 'invalid'
  | 'unknown_node'
  | 'bad_signature'
  | 'skewed'
  | 'replayed'
  | 'too_frequent'
  | 'busy'
  | 'error'

export interface HeartbeatIngestOptions {
  database: Database
  sessionGapSeconds: number
  clockSkewSeconds: number
  counter: Counter<'outcome'>
  now: () => Date
}

export interface HeartbeatIngest {
  /** Accepts a heartbeat or throws the 4xx that says why not. */
  ingest(body: string, signature: string | undefined): Promise<void>
}

/** Node keys are immutable, so they are kept once read: the hot path then skips a query. */
const MAX_CACHED_KEYS = 100_000
/** How long an id that was never enrolled stays known as unknown. */
const UNKNOWN_FOR_MS = 5000

export function createHeartbeatIngest(options: HeartbeatIngestOptions): HeartbeatIngest {
  const { database, counter, now } = options
  const write = createHeartbeatWriter(database, options.sessionGapSeconds)
  const keys = new Map<string, KeyObject>()

  // Keys not yet known are read in groups: after a restart every node's first heartbeat misses
  // the cache at once, and one query per heartbeat would queue them all behind the pool.
  const readKeys = createGroupCommit(
    async (ids: string[]) => {
      const rows = await database.query<{ id: string; public_key: string; removed: boolean }>(
        `select id, public_key, removed_at is not null as removed from fleet_nodes
         where id = any(array(select value::uuid from jsonb_array_elements_text($1::jsonb)))`,
        [JSON.stringify([...new Set(ids)])],
      )
      const found = new Map(rows.map((row) => [row.id, row]))
      return ids.map((id) => found.get(id))
    },
    { maxBatch: 512, maxInFlight: 4 },
  )

  /** Nodes with a heartbeat waiting for the writer. */
  const inFlight = new Set<string>()

  /** Ids found unknown lately: a stream of made-up ids costs one query per id, not per heartbeat. */
  const unknownUntil = new Map<string, number>()

  const keyOf = async (nodeId: string): Promise<KeyObject> => {
    const cached = keys.get(nodeId)
    if (cached) return cached
    if ((unknownUntil.get(nodeId) ?? 0) > Date.now()) throw unknownNode(nodeId)
    const node = await readKeys(nodeId)
    if (!node) {
      // Only ids that were never enrolled are remembered: a removed node may enroll again.
      if (unknownUntil.size >= MAX_CACHED_KEYS) unknownUntil.clear()
      unknownUntil.set(nodeId, Date.now() + UNKNOWN_FOR_MS)
      throw unknownNode(nodeId)
    }
    if (node.removed) throw unknownNode(nodeId)
    const key = publicKeyObjectOf(node.public_key)
    if (keys.size >= MAX_CACHED_KEYS) keys.clear()
    keys.set(nodeId, key)
    return key
  }

  const check = async (body: string, signature: string | undefined): Promise<void> => {
    if (!signature) throw refusal('bad_signature', unauthorized(`missing ${SIGNATURE_HEADER} header`))
    let json: unknown
    try {
      json = JSON.parse(body)
    } catch {
      throw refusal('invalid', invalidInput('heartbeat body is not JSON'))
    }
    const parsed = heartbeatSchema.safeParse(json)
    if (!parsed.success) {
      const issues = describeIssues(parsed.error.issues)
      throw refusal('invalid', invalidInput(`invalid heartbeat: ${summarizeIssues(issues)}`, issues))
    }
    const heartbeat = parsed.data
    const key = await keyOf(heartbeat.nodeId).catch((error: unknown) => {
      throw error instanceof BerthError && error.code === 'not_found' ? refusal('unknown_node', error) : error
    })
    if (!agentSignatureValid(key, body, signature)) {
      throw refusal(
        'bad_signature',
        unauthorized(`heartbeat signature does not verify with node ${heartbeat.nodeId}'s enrolled key`),
      )
    }
    const receivedAt = now()
    const skewSeconds = Math.abs(Date.parse(heartbeat.sentAt) - receivedAt.getTime()) / 1000
    if (skewSeconds > options.clockSkewSeconds) {
      throw refusal(
        'skewed',
        invalidInput(
          `heartbeat time ${heartbeat.sentAt} is ${Math.round(skewSeconds)} s from the server's clock (allowed: ${options.clockSkewSeconds} s): check the node's clock`,
        ),
      )
    }
    // One heartbeat per node waits for the writer at a time: a node sending many at once cannot
    // fill the queue (and memory) with its copies; the writer would refuse all but one anyway.
    if (inFlight.has(heartbeat.nodeId)) {
      throw refusal(
        'too_frequent',
        new BerthError('rate_limited', `node ${heartbeat.nodeId} already has a heartbeat being written`),
      )
    }
    inFlight.add(heartbeat.nodeId)
    const outcome = await write({ heartbeat, receivedAt })
      .catch((error: unknown) => {
        throw error instanceof BerthError && error.code === 'rate_limited' ? refusal('busy', error) : error
      })
      .finally(() => inFlight.delete(heartbeat.nodeId))
    if (!outcome.ok) {
      if (outcome.error.code === 'not_found') keys.delete(heartbeat.nodeId)
      const label = { not_found: 'unknown_node', rate_limited: 'too_frequent' }[outcome.error.code as string]
      throw refusal((label ?? 'replayed') as HeartbeatOutcomeLabel, outcome.error)
    }
  }

  return {
    async ingest(body, signature) {
      try {
        await check(body, signature)
        counter.inc({ outcome: 'accepted' })
      } catch (error) {
        counter.inc({ outcome: error instanceof Refusal ? error.label : 'error' })
        throw error instanceof Refusal ? error.error : error
      }
    },
  }
}

class Refusal extends Error {
  constructor(
    readonly label: HeartbeatOutcomeLabel,
    readonly error: unknown,
  ) {
    super(label)
  }
}

const refusal = (label: HeartbeatOutcomeLabel, error: unknown) => new Refusal(label, error)
