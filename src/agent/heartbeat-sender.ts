import { statfsSync } from 'node:fs'
import { availableParallelism, totalmem } from 'node:os'
import type { NodeResources, ReportedInstance, ReportedUsage } from '../domain/node.ts'
import { type AgentKeyPair, signWithAgentKey } from '../fleet/agent-key.ts'
import { SIGNATURE_HEADER } from '../fleet/heartbeats.ts'
import type { Heartbeat } from '../fleet/node-schemas.ts'
import { packageVersion } from '../version.ts'

// Builds, signs and sends heartbeats. The sequence number is the clock in milliseconds, or one
// more than the last when the clock has not moved on: it increases across agent restarts without
// being stored anywhere, as long as the machine's clock does not go back.

export interface HeartbeatSenderOptions {
  fetch: typeof fetch
  server: string
  nodeId: string
  key: AgentKeyPair
  labels: Record<string, string>
  allocatable: NodeResources
  capacity: NodeResources
  instances?: () => Promise<ReportedInstance[]>
  usage?: () => ReportedUsage[]
  now?: () => Date
}

export interface SendResult {
  status: number
  /** The server's error message, for a refused heartbeat. */
  message?: string
}

export function createHeartbeatSender(options: HeartbeatSenderOptions) {
  const now = options.now ?? (() => new Date())
  const version = packageVersion()
  let lastSeq = 0
  return async function send(signal?: AbortSignal): Promise<SendResult> {
    const at = now()
    lastSeq = Math.max(lastSeq + 1, at.getTime())
    const heartbeat: Heartbeat = {
      nodeId: options.nodeId,
      seq: lastSeq,
      sentAt: at.toISOString(),
      capacity: options.capacity,
      allocatable: options.allocatable,
      labels: options.labels,
      version,
      instances: (await options.instances?.()) ?? [],
      usage: options.usage?.() ?? [],
    }
    const body = JSON.stringify(heartbeat)
    const res = await options.fetch(`${options.server.replace(/\/+$/, '')}/v1/fleet/heartbeats`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        [SIGNATURE_HEADER]: signWithAgentKey(options.key, body),
      },
      body,
      ...(signal ? { signal } : {}),
    })
    if (res.ok) {
      await res.body?.cancel()
      return { status: res.status }
    }
    const text = await res.text()
    let message = text
    try {
      message = (JSON.parse(text) as { error: { message: string } }).error.message
    } catch {
      // Not berth's error envelope (a proxy's page): the text as it is.
    }
    return { status: res.status, message }
  }
}

/** The machine's size as the agent sees it: CPUs, memory, and the disk its data dir is on. */
export function machineResources(dataDir: string): NodeResources {
  const disk = statfsSync(dataDir)
  return {
    milliCpus: availableParallelism() * 1000,
    memoryMb: Math.floor(totalmem() / (1024 * 1024)),
    diskMb: Math.floor((disk.blocks * disk.bsize) / (1024 * 1024)),
    gpus: [],
  }
}
