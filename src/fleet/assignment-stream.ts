import type { Db } from '../db/client.ts'
import { numberedSql, queryRows } from '../db/client.ts'
import { conflict, invalidInput, unauthorized } from '../domain/errors.ts'
import { isUuid } from '../domain/ids.ts'
import { type Assignment, assignmentStreamMessage } from '../domain/node.ts'
import type { EventBus } from '../events/bus.ts'
import type { Vault } from '../secrets/vault.ts'
import { agentSignatureValid, publicKeyObjectOf } from './agent-key.ts'
import { unknownNode } from './heartbeat-writer.ts'
import type { LogRelay, LogRequest } from './log-relay.ts'
import { assignmentsOf } from './placements.ts'

// An agent follows its assignments over one server-sent event stream. It opens the stream with a
// signature of its node id and the time by its agent key; a signature older than the clock-skew
// window opens nothing. Each node has at most one stream: a new one closes the one before (an
// agent that reconnects, or a replayed signature, which then cuts off its own agent only until
// that agent reconnects). Every message is the node's whole list, so a reconnect needs no replay:
// the first message is the resync.

/** What a node's stream carries: its whole list of assignments, or a request for a log. */
export type NodeMessage =
  | { event: 'assignments'; data: { assignments: Assignment[] } }
  | { event: 'logs'; data: LogRequest }

/** Headers an agent opens its stream with. */
export const NODE_HEADER = 'berth-node'
export const TIMESTAMP_HEADER = 'berth-timestamp'

/** Nodes whose last stream timestamp is kept (beyond it the memory starts over). */
const MAX_REMEMBERED = 100_000

export interface AssignmentStreamOptions {
  db: Db
  bus: Pick<EventBus, 'onNodeAssignments'>
  /** Log requests for the node, handed to its agent on the same stream. */
  logs: Pick<LogRelay, 'claim'>
  clockSkewSeconds: number
  now: () => Date
  /** Opens the sealed secret env values of the specs a node is sent. */
  vault: Pick<Vault, 'open'>
}

export function createAssignmentStreams(options: AssignmentStreamOptions) {
  const { db, now } = options
  const open = new Map<string, AbortController>()
  /** The newest timestamp each node opened a stream with here: a replayed one opens nothing. */
  const lastOpened = new Map<string, number>()

  return {
    /** The node the headers prove to be, or the 4xx that says why not. */
    async authenticate(headers: {
      node: string | undefined
      timestamp: string | undefined
      signature: string | undefined
    }): Promise<string> {
      const { node, timestamp, signature } = headers
      if (!node || !isUuid(node)) throw invalidInput(`${NODE_HEADER}: must be the node id`)
      const at = timestamp ? Date.parse(timestamp) : Number.NaN
      if (!timestamp || timestamp.length > 40 || Number.isNaN(at)) {
        throw invalidInput(`${TIMESTAMP_HEADER}: must be the time, as ISO 8601`)
      }
      if (Math.abs(at - now().getTime()) > options.clockSkewSeconds * 1000) {
        throw invalidInput(
          `${TIMESTAMP_HEADER}: further than ${options.clockSkewSeconds}s from the server's clock`,
        )
      }
      if (!signature) throw unauthorized('missing signature')
      const [row] = await queryRows<{ public_key: string }>(
        db,
        numberedSql('select public_key from fleet_nodes where id = $1 and removed_at is null', [node]),
      )
      if (!row) throw unknownNode(node)
      const message = assignmentStreamMessage(node, timestamp)
      if (!agentSignatureValid(publicKeyObjectOf(row.public_key), message, signature)) {
        throw unauthorized('bad signature: it does not verify with the node’s agent key')
      }
      if (at <= (lastOpened.get(node) ?? Number.NEGATIVE_INFINITY)) {
        throw conflict(
          `${TIMESTAMP_HEADER}: not after the one this node last opened its stream with (a replay?)`,
        )
      }
      if (lastOpened.size >= MAX_REMEMBERED) lastOpened.clear()
      lastOpened.set(node, at)
      return node
    },

    /**
     * Registers the node's stream, closing the one it had; calls `send` with the node's whole list
     * now and whenever it changes (and every `refreshMs`, for a change whose notice was lost),
     * until it is closed, another stream of the node opens, or `send` fails (the agent is gone).
     */
    follow(
      nodeId: string,
      send: (event: NodeMessage) => Promise<void>,
      refreshMs = 15_000,
    ): { close(): void; done: Promise<void> } {
      open.get(nodeId)?.abort(new Error('another stream of this node opened'))
      const abort = new AbortController()
      open.set(nodeId, abort)
      let wanted = true
      let wake: (() => void) | undefined
      const poke = () => {
        wanted = true
        wake?.()
      }
      const unsubscribe = options.bus.onNodeAssignments(nodeId, poke)
      const timer = setInterval(poke, refreshMs)
      abort.signal.addEventListener('abort', poke, { once: true })
      const closed = new Promise<void>((resolve) => abort.signal.addEventListener('abort', () => resolve()))
      const done = (async () => {
        let last = ''
        try {
          while (!abort.signal.aborted) {
            if (!wanted) await new Promise<void>((resolve) => (wake = resolve))
            wake = undefined
            wanted = false
            if (abort.signal.aborted) break
            const assignments = await assignmentsOf(db, nodeId, options.vault)
            const text = JSON.stringify(assignments)
            // Unchanged lists are not sent again; the stream's keep-alive shows it is open. A
            // send an agent does not read stays pending: closing the stream must not wait for it.
            if (text !== last)
              await Promise.race([send({ event: 'assignments', data: { assignments } }), closed])
            last = text
            for (const request of await options.logs.claim(nodeId)) {
              await Promise.race([send({ event: 'logs', data: request }), closed])
            }
          }
        } finally {
          clearInterval(timer)
          unsubscribe()
          if (open.get(nodeId) === abort) open.delete(nodeId)
        }
      })()
      return { close: () => abort.abort(new Error('the stream closed')), done }
    },

    /** Closes every stream (the server is stopping). */
    closeAll(): void {
      for (const abort of open.values()) abort.abort(new Error('the server is stopping'))
    },
  }
}

export type AssignmentStreams = ReturnType<typeof createAssignmentStreams>
