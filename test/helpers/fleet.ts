import { generatePrivateKey } from 'viem/accounts'
import { type EnrollmentAnswer, enrollNode } from '../../src/agent/enroll.ts'
import { createHttpClient } from '../../src/client/http-client.ts'
import { type AgentKeyPair, generateAgentKey, signWithAgentKey } from '../../src/fleet/agent-key.ts'
import { SIGNATURE_HEADER } from '../../src/fleet/heartbeats.ts'
import type { Heartbeat } from '../../src/fleet/node-schemas.ts'
import type { TestApp } from './http-app.ts'

// Fleet agents as tests drive them: enrollment through the agent's own code, heartbeats built and
// signed here so a test can replay, reorder, tamper with or mistime them.

/** A fetch that answers from the in-process app (the agent's HTTP client takes any fetch). */
export const appFetch =
  (app: TestApp): typeof fetch =>
  async (input, init) => {
    const url = new URL(String(input))
    return app.fetch(`${url.pathname}${url.search}`, init ?? {})
  }

export interface TestNode {
  nodeId: string
  key: AgentKeyPair
  walletKey: `0x${string}`
  answer: EnrollmentAnswer
}

export async function enrollTestNode(
  app: TestApp,
  options: {
    walletKey?: `0x${string}`
    key?: AgentKeyPair
    joinToken?: string
    name?: string
    labels?: Record<string, string>
    now?: Date
  } = {},
): Promise<TestNode> {
  const walletKey = options.walletKey ?? generatePrivateKey()
  const key = options.key ?? generateAgentKey()
  const answer = await enrollNode({
    client: createHttpClient({ server: 'http://berth.test', fetch: appFetch(app) }),
    walletKey,
    agentPublicKey: key.publicKey,
    name: options.name,
    labels: options.labels,
    joinToken: options.joinToken,
    ...(options.now ? { now: options.now } : {}),
  })
  return { nodeId: answer.nodeId, key, walletKey, answer }
}

const RESOURCES = { milliCpus: 4000, memoryMb: 8192, diskMb: 100_000, gpus: [] }

export function heartbeatOf(node: Pick<TestNode, 'nodeId'>, seq: number, at: Date): Heartbeat {
  return {
    nodeId: node.nodeId,
    seq,
    sentAt: at.toISOString(),
    capacity: RESOURCES,
    allocatable: RESOURCES,
    labels: { region: 'test' },
    version: 'test',
    instances: [],
    usage: [],
  }
}

/** Posts a body with a signature (by default the node's own, over that exact body). */
export async function postHeartbeat(
  app: TestApp,
  body: string,
  signature: string | undefined,
): Promise<{ status: number; message?: string }> {
  const res = await app.fetch('/v1/fleet/heartbeats', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(signature ? { [SIGNATURE_HEADER]: signature } : {}) },
    body,
  })
  const text = await res.text()
  return {
    status: res.status,
    ...(text ? { message: (JSON.parse(text) as { error: { message: string } }).error.message } : {}),
  }
}

/** Sends the node's heartbeat with sequence `seq` at `at` (reporting these instances), signed with its key. */
export async function beat(
  app: TestApp,
  node: TestNode,
  seq: number,
  at: Date,
  instances: Heartbeat['instances'] = [],
  usage: Heartbeat['usage'] = [],
) {
  const body = JSON.stringify({ ...heartbeatOf(node, seq, at), instances, usage })
  return postHeartbeat(app, body, signWithAgentKey(node.key, body))
}

/**
 * A server clock a second further on at each step, for tests whose heartbeats follow each other
 * faster than a node may send them (half a second apart at least).
 */
export function steppingClock(): { now: () => Date; step: () => Date } {
  let shift = 0
  return {
    now: () => new Date(Date.now() + shift),
    step: () => {
      shift += 1000
      return new Date(Date.now() + shift)
    },
  }
}
