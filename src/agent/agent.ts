import { createHttpClient } from '../client/http-client.ts'
import { abortableDelay } from '../domain/delay.ts'
import { BerthError } from '../domain/errors.ts'
import { loadAgentState, saveNode } from './agent-state.ts'
import { type EnrollmentAnswer, enrollNode } from './enroll.ts'
import { createHeartbeatSender, machineResources } from './heartbeat-sender.ts'

// `berth agent`: enrolls this machine with the control plane once (the wallet key is needed for
// that alone; later starts resume as the node saved in the data dir, authenticated by the agent's
// own key), then sends a signed heartbeat every interval the server asked for. A server that does
// not answer is waited out, never a reason to stop; a server that no longer knows the node
// (removed by the operator) is asked to enroll it again.

export interface AgentOptions {
  server: string
  dataDir: string
  /** The node operator's wallet key, asked for only when the node has to enroll. */
  walletKey: () => `0x${string}`
  joinToken?: string | undefined
  name?: string | undefined
  labels: Record<string, string>
  fetch: typeof fetch
  signal: AbortSignal
  log: (line: string) => void
}

export async function runAgent(options: AgentOptions): Promise<void> {
  const { signal, log } = options
  const state = loadAgentState(options.dataDir)
  const client = createHttpClient({ server: options.server, fetch: options.fetch })
  const enroll = async (): Promise<EnrollmentAnswer> => {
    const answer = await enrollNode({
      client,
      walletKey: options.walletKey(),
      agentPublicKey: state.key.publicKey,
      name: options.name,
      labels: options.labels,
      joinToken: options.joinToken,
    })
    saveNode(options.dataDir, {
      server: client.server,
      nodeId: answer.nodeId,
      heartbeatSeconds: answer.heartbeatSeconds,
    })
    log(
      `${answer.reenrolled ? 'enrolled again' : 'enrolled'} as node ${answer.nodeId} (${answer.name}) for ${answer.operator}; heartbeat every ${answer.heartbeatSeconds} s`,
    )
    return answer
  }

  let enrolled: Pick<EnrollmentAnswer, 'nodeId' | 'heartbeatSeconds'>
  const saved = state.node?.server === client.server ? state.node : undefined
  if (saved) {
    enrolled = saved
    log(`resuming as node ${saved.nodeId}; heartbeat every ${saved.heartbeatSeconds} s`)
  } else {
    try {
      enrolled = await enrollWhenReachable(enroll, signal, log)
    } catch (error) {
      // Stopped while still waiting for the server: a clean stop, not a failure.
      if (signal.aborted) return
      throw error
    }
  }
  const resources = machineResources(options.dataDir)
  const senderFor = (nodeId: string) =>
    createHeartbeatSender({
      fetch: options.fetch,
      server: client.server,
      nodeId,
      key: state.key,
      labels: options.labels,
      capacity: resources,
      allocatable: resources,
    })
  let send = senderFor(enrolled.nodeId)
  let failing = false
  while (!signal.aborted) {
    try {
      const result = await send(signal)
      if (result.status === 404) {
        log(`the server does not know this node any more (${result.message}); enrolling again`)
        enrolled = await enrollWhenReachable(enroll, signal, log)
        send = senderFor(enrolled.nodeId)
        // The next heartbeat after the interval, as always: not at once.
      } else {
        if (result.status >= 300) log(`heartbeat refused (${result.status}): ${result.message}`)
        else if (failing) log('heartbeats accepted again')
        failing = result.status >= 300
      }
    } catch (error) {
      if (signal.aborted) break
      // An enrollment that cannot succeed later (a closed fleet without a token, no wallet key,
      // a key another wallet holds) ends the agent with its reason.
      if (error instanceof BerthError && FINAL_ENROLLMENT_ERRORS.has(error.code)) throw error
      if (!failing) log(`cannot reach ${client.server}: ${(error as Error).message}; retrying every interval`)
      failing = true
    }
    await abortableDelay(enrolled.heartbeatSeconds * 1000, signal).catch(() => undefined)
  }
}

const FINAL_ENROLLMENT_ERRORS = new Set(['forbidden', 'unauthorized', 'invalid_input', 'conflict'])

/** How long an agent waits before asking a server that did not answer to enroll it again. */
const ENROLL_RETRY_MS = 5000

/**
 * Enrolls, waiting out a server that does not answer (or answers 5xx) at the agent's start, as a
 * service started before the network is should. A refusal (no token, another wallet's key) is final.
 */
async function enrollWhenReachable(
  enroll: () => Promise<EnrollmentAnswer>,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<EnrollmentAnswer> {
  for (;;) {
    try {
      return await enroll()
    } catch (error) {
      const retryable =
        error instanceof BerthError &&
        (error.code === 'unreachable' || error.code === 'provider_unavailable' || error.code === 'internal')
      if (!retryable || signal.aborted) throw error
      log(`cannot enroll yet: ${(error as Error).message}; trying again in ${ENROLL_RETRY_MS / 1000} s`)
      await abortableDelay(ENROLL_RETRY_MS, signal)
    }
  }
}
