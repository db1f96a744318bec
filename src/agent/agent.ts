import { createHttpClient } from '../cli/http-client.ts'
import { abortableDelay } from '../domain/delay.ts'
import { BerthError } from '../domain/errors.ts'
import { loadAgentState, saveNode } from './agent-state.ts'
import { type EnrollmentAnswer, enrollNode } from './enroll.ts'
import { createHeartbeatSender, machineResources } from './heartbeat-sender.ts'

// `berth agent`: enrolls this machine with the control plane (again at every start: the same data
// dir keeps its node), then sends a signed heartbeat every interval the server asked for. A server
// that does not answer is waited out, never a reason to stop; a server that no longer knows the
// node (removed by the operator) is asked to enroll it again.

export interface AgentOptions {
  server: string
  dataDir: string
  walletKey: `0x${string}`
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
      walletKey: options.walletKey,
      agentPublicKey: state.key.publicKey,
      name: options.name,
      labels: options.labels,
      joinToken: options.joinToken,
    })
    saveNode(options.dataDir, { server: client.server, nodeId: answer.nodeId })
    log(
      `${answer.reenrolled ? 'enrolled again' : 'enrolled'} as node ${answer.nodeId} (${answer.name}) for ${answer.operator}; heartbeat every ${answer.heartbeatSeconds} s`,
    )
    return answer
  }

  let enrolled = await enroll()
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
        enrolled = await enroll()
        send = senderFor(enrolled.nodeId)
        continue
      }
      if (result.status >= 300) log(`heartbeat refused (${result.status}): ${result.message}`)
      else if (failing) log('heartbeats accepted again')
      failing = result.status >= 300
    } catch (error) {
      if (signal.aborted) break
      // An enrollment the server refuses (a closed fleet without a token) will not succeed later.
      if (error instanceof BerthError && (error.code === 'forbidden' || error.code === 'unauthorized'))
        throw error
      if (!failing) log(`cannot reach ${client.server}: ${(error as Error).message}; retrying every interval`)
      failing = true
    }
    await abortableDelay(enrolled.heartbeatSeconds * 1000, signal).catch(() => undefined)
  }
}
