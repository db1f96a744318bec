import type { HttpClient } from '../client/http-client.ts'
import { followSse } from '../client/sse.ts'
import { abortableDelay } from '../domain/delay.ts'
import { assignmentStreamMessage } from '../domain/node.ts'
import { type AgentKeyPair, signWithAgentKey } from '../fleet/agent-key.ts'
import { NODE_HEADER, TIMESTAMP_HEADER } from '../fleet/assignment-stream.ts'
import { SIGNATURE_HEADER } from '../fleet/heartbeats.ts'
import type { LogRequest } from '../fleet/log-relay.ts'
import { logRequestSchema } from './log-sender.ts'
import { assignmentsMessageSchema, type Runner } from './runner.ts'

// Follows the node's assignment stream for as long as the agent runs. Each connection is opened
// with a fresh signature; every message is the whole list, so the first one after a reconnect is
// the resync. A refused or broken stream is opened again after a pause: meanwhile the runner keeps
// what runs and starts nothing.

const REOPEN_MS = 5000

export async function followAssignments(options: {
  client: HttpClient
  nodeId: string
  key: AgentKeyPair
  runner: Runner
  /** Called after each list is converged, to report the result at once. */
  converged: () => void
  /** A request for a deployment's log (answered on its own, while the stream goes on). */
  logsWanted: (request: LogRequest) => void
  signal: AbortSignal
  log: (line: string) => void
}): Promise<void> {
  const { client, nodeId, key, runner, signal, log } = options
  const open = (_lastEventId: string | undefined, connection: AbortSignal) => {
    const timestamp = new Date().toISOString()
    return client.open('/v1/fleet/assignments', {
      headers: {
        accept: 'text/event-stream',
        [NODE_HEADER]: nodeId,
        [TIMESTAMP_HEADER]: timestamp,
        [SIGNATURE_HEADER]: signWithAgentKey(key, assignmentStreamMessage(nodeId, timestamp)),
      },
      signal: connection,
    })
  }
  while (!signal.aborted) {
    try {
      for await (const message of followSse({
        open,
        signal,
        maxAttempts: Number.POSITIVE_INFINITY,
        maxRetryMs: 30_000,
        // The server sends a keep-alive every 15 s.
        idleTimeoutMs: 45_000,
      })) {
        if (message.event === 'logs') {
          const request = logRequestSchema.safeParse(JSON.parse(message.data))
          if (request.success) options.logsWanted(request.data)
          else log(`ignored a log request that is not valid: ${request.error.issues[0]?.message}`)
          continue
        }
        if (message.event !== 'assignments') continue
        const parsed = assignmentsMessageSchema.safeParse(JSON.parse(message.data))
        if (!parsed.success) {
          log(`ignored an assignment list that is not valid: ${parsed.error.issues[0]?.message}`)
          continue
        }
        await runner.assign(parsed.data.assignments)
        options.converged()
      }
    } catch (error) {
      if (signal.aborted) return
      log(`assignment stream: ${(error as Error).message}; opening it again in ${REOPEN_MS / 1000} s`)
    }
    await abortableDelay(REOPEN_MS, signal).catch(() => undefined)
  }
}
