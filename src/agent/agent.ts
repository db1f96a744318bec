import { createHttpClient } from '../client/http-client.ts'
import { abortableDelay } from '../domain/delay.ts'
import { BerthError } from '../domain/errors.ts'
import { signWithAgentKey } from '../fleet/agent-key.ts'
import { SIGNATURE_HEADER } from '../fleet/heartbeats.ts'
import type { LogBatch, LogRequest } from '../fleet/log-relay.ts'
import { isInternalAddress } from '../outbound/address-policy.ts'
import type { EngineAddress } from '../providers/docker/connection.ts'
import { createDockerProvider } from '../providers/docker/docker-provider.ts'
import { loadAgentState, saveNode } from './agent-state.ts'
import { followAssignments } from './assignment-follower.ts'
import { type EnrollmentAnswer, enrollNode } from './enroll.ts'
import { createHeartbeatSender, machineResources } from './heartbeat-sender.ts'
import { sendLogs } from './log-sender.ts'
import { createRunner } from './runner.ts'

// `berth agent`: enrolls this machine with the control plane once (the wallet key is needed for
// that alone; later starts resume as the node saved in the data dir, authenticated by the agent's
// own key), then follows its assignments and runs them on the local Docker engine (runner.ts),
// and sends a signed heartbeat with what it runs every interval the server asked for, and at once
// after each change. A server that does not answer is waited out, never a reason to stop; a server
// that no longer knows the node (removed by the operator) is asked to enroll it again.

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
  /** The Docker engine the node runs its assignments on; the local socket when unset. */
  engine?: EngineAddress
  /** Address published ports bind to (default 127.0.0.1) and the host endpoints name. */
  hostIp?: string
  publicHost?: string
}

/** The least time between two heartbeats (the server refuses closer ones). */
const MIN_HEARTBEAT_GAP_MS = 600
/** How often the agent samples what its deployments use (heartbeats carry the last sample). */
const USAGE_SAMPLE_MS = 30_000

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
  const hostIp = options.hostIp ?? '127.0.0.1'
  // Reported with every instance, as an address: the control plane neither resolves names nor
  // probes private addresses a node names (unless its operator allows them).
  const publicHost = options.publicHost ?? (hostIp === '0.0.0.0' ? '127.0.0.1' : hostIp)
  if (isInternalAddress(publicHost)) {
    log(
      `published ports are announced on ${publicHost}, a private address: set --public-host to reach them from elsewhere`,
    )
  }
  const wake = createWake()
  /** This node's share of the engine: its runner and the stream that feeds it. */
  const nodeFor = (nodeId: string) => {
    const docker = createDockerProvider({
      scope: nodeId,
      ...(options.engine ? { engine: options.engine } : {}),
      hostIp,
      publicHost,
    })
    const runner = createRunner({ docker, log })
    const stop = new AbortController()
    const post = async (batch: LogBatch) => {
      const body = JSON.stringify(batch)
      const res = await options.fetch(`${client.server}/v1/fleet/logs`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: signWithAgentKey(state.key, body),
        },
        body,
        signal: AbortSignal.timeout(30_000),
      })
      await res.body?.cancel()
      return res.status
    }
    const logsWanted = (request: LogRequest) =>
      void sendLogs({ docker, nodeId, request, post, signal: AbortSignal.any([signal, stop.signal]) }).catch(
        (error: unknown) =>
          log(`could not send the log of ${request.deploymentId}: ${(error as Error).message}`),
      )
    const stopped = followAssignments({
      client,
      nodeId,
      key: state.key,
      runner,
      converged: wake.now,
      logsWanted,
      signal: AbortSignal.any([signal, stop.signal]),
      log,
    })
    const send = createHeartbeatSender({
      fetch: options.fetch,
      server: client.server,
      nodeId,
      key: state.key,
      labels: options.labels,
      capacity: resources,
      allocatable: resources,
      instances: () => runner.instances(),
      usage: () => runner.usage(),
    })
    const sampling = sampleEvery(
      USAGE_SAMPLE_MS,
      () => runner.sampleUsage(),
      AbortSignal.any([signal, stop.signal]),
    )
    return {
      runner,
      send,
      /** Leaves this node id: stops following it and removes what ran for it. */
      async leave() {
        stop.abort()
        await Promise.all([stopped, sampling])
        await runner.assign([])
      },
    }
  }
  let node = nodeFor(enrolled.nodeId)
  let failing = false
  while (!signal.aborted) {
    try {
      const result = await node.send(signal)
      if (result.status === 404) {
        log(`the server does not know this node any more (${result.message}); enrolling again`)
        const previous = enrolled.nodeId
        enrolled = await enrollWhenReachable(enroll, signal, log)
        if (enrolled.nodeId !== previous) {
          await node.leave()
          node = nodeFor(enrolled.nodeId)
        }
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
    if (!failing) void node.runner.retry()
    await wake.wait(enrolled.heartbeatSeconds * 1000, MIN_HEARTBEAT_GAP_MS, signal)
  }
}

/** Runs `sample` every `everyMs` (never two at once) until the signal aborts. */
async function sampleEvery(everyMs: number, sample: () => Promise<void>, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    await abortableDelay(everyMs, signal).catch(() => undefined)
    if (!signal.aborted) await sample()
  }
}

/** The pause between heartbeats, cut short (but never below a least gap) when there is news to report. */
function createWake() {
  let early: (() => void) | undefined
  let pending = false
  return {
    now() {
      pending = true
      early?.()
    },
    async wait(intervalMs: number, leastMs: number, signal: AbortSignal) {
      await abortableDelay(leastMs, signal).catch(() => undefined)
      if (pending || signal.aborted) {
        pending = false
        return
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer)
          signal.removeEventListener('abort', done)
          early = undefined
          pending = false
          resolve()
        }
        const timer = setTimeout(done, intervalMs - leastMs)
        early = done
        signal.addEventListener('abort', done, { once: true })
      })
    },
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
