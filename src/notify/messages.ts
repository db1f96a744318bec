import type { EventType } from '../domain/event-types.ts'

// What people read: one short line per event (the in-app list, chat, an email's subject) and a
// link to the deployment it is about. Machines get the event itself (webhooks, GET /v1/events).

export interface TellableEvent {
  id: string
  type: EventType
  deploymentId: string | null
  payload: Record<string, unknown>
  createdAt: Date
}

export interface Message {
  /** One line, under 200 characters: a chat message's text, an email's subject. */
  title: string
  /** The title and the facts, a few lines: an email's body. */
  text: string
  /** The deployment's page, when the event is about one. */
  link?: string
}

const micro = (value: unknown) => {
  const n = BigInt(String(value ?? '0'))
  const sign = n < 0n ? '-' : ''
  const abs = n < 0n ? -n : n
  return `${sign}$${abs / 1_000_000n}.${(abs % 1_000_000n).toString().padStart(6, '0').slice(0, 2)}`
}

/** Names from tenants are shown, never interpreted: quotes keep them apart from berth's words. */
const quoted = (value: unknown) => `"${String(value ?? '').slice(0, 64)}"`

function titleOf(e: TellableEvent): string {
  const p = e.payload
  const name = quoted(p.name ?? p.deploymentId)
  switch (e.type) {
    case 'deployment.running':
      return `Deployment ${name} is running`
    case 'deployment.failed':
      return `Deployment ${name} failed${p.error ? `: ${String(p.error).slice(0, 120)}` : ''}`
    case 'deployment.stopped':
      return `Deployment ${name} stopped${p.stopReason ? ` (${String(p.stopReason)})` : ''}`
    case 'deployment.unhealthy':
      return `Deployment ${name} is unhealthy`
    case 'deployment.deleted':
      return `Deployment ${name} was deleted`
    case 'deployment.stopped_out_of_funds':
      return `Deployment ${name} is stopping: out of funds`
    case 'payment.credited':
      return `${micro(p.microUsd)} credited to your balance`
    case 'payment.reversed':
      return `${micro(p.microUsd)} taken back: a chain reorganisation removed a payment`
    case 'balance.low':
      return `Your balance is low: ${micro(p.availableMicroUsd)} available`
    case 'funds.exhausted':
      return `Out of funds: deployments stop at ${String(p.graceEndsAt)} unless topped up`
    case 'nft.transferred':
      if (p.burned) return `NFT ${String(p.tokenId)} was burned; deployment ${name} is stopped`
      return p.direction === 'in'
        ? `NFT ${String(p.tokenId)} came to you with deployment ${name}`
        : `NFT ${String(p.tokenId)} left you; deployment ${name} went with it`
    case 'node.lost':
      return `Node ${quoted(p.name ?? p.nodeId)} stopped sending heartbeats`
    case 'node.recovered':
      return `Node ${quoted(p.name ?? p.nodeId)} is back`
    case 'quota.reached':
      return `Quota reached: ${String(p.quota)} (limit ${String(p.limit)})`
    case 'webhook.disabled':
      return `Webhook ${quoted(p.shown)} was disabled (${String(p.reason)})`
    case 'webhook.test':
      return 'Test event from berth'
    default:
      // The operator's alerts carry their own line.
      return String(p.summary ?? e.type).slice(0, 200)
  }
}

export function messageOf(event: TellableEvent, publicUrl: URL): Message {
  const title = titleOf(event)
  const deploymentId = event.deploymentId ?? (event.payload.deploymentId as string | undefined)
  // An old holder of an NFT can no longer open the deployment it took along.
  const reachable = !(event.type === 'nft.transferred' && event.payload.direction === 'out')
  const link = deploymentId && reachable ? new URL(`/deployments/${deploymentId}`, publicUrl).href : undefined
  const lines = [title, '', `Event: ${event.type} (${event.id})`, `At: ${event.createdAt.toISOString()}`]
  if (link) lines.push(`Deployment: ${link}`)
  return { title, text: lines.join('\n'), ...(link ? { link } : {}) }
}
