// The events berth tells owners about (webhooks, chat, email, the in-app list, GET /v1/events),
// and those it tells the operator. One list, so the API's enum, the subscriptions and the senders
// agree. Each is written to the outbox in the transaction of the change that caused it.

export const ownerEventTypes = [
  'deployment.running',
  'deployment.failed',
  'deployment.stopped',
  'deployment.unhealthy',
  'deployment.deleted',
  'deployment.stopped_out_of_funds',
  'payment.credited',
  'payment.reversed',
  'balance.low',
  'funds.exhausted',
  'nft.transferred',
  'node.lost',
  'node.recovered',
  'quota.reached',
  'webhook.disabled',
  /** Sent only to the webhook or channel it was asked for (POST …/test). */
  'webhook.test',
] as const
export type OwnerEventType = (typeof ownerEventTypes)[number]

/**
 * Events about the owner's money: read (GET /v1/events, the in-app list) only by those who may read
 * payments. A deployer or viewer of an organisation sees its deployments, not its balance.
 */
export const paymentEventTypes: readonly OwnerEventType[] = [
  'payment.credited',
  'payment.reversed',
  'balance.low',
  'funds.exhausted',
]

/** Told to the operator's own channels (`notifications.operator`), never to an owner. */
export const operatorEventTypes = [
  'operator.provider_unavailable',
  'operator.capacity_high',
  'operator.chain_lagging',
  'operator.webhook_backlog',
  /** A condition alerted before is over (its payload names which). */
  'operator.resolved',
] as const
export type OperatorEventType = (typeof operatorEventTypes)[number]

export type EventType = OwnerEventType | OperatorEventType

/** The deployment statuses whose arrival is an event of its own (`deployment.<status>`). */
export const toldStatuses = ['running', 'failed', 'stopped', 'unhealthy', 'deleted'] as const

/** An event as written to the outbox: who it is for, what happened, and its facts. */
export interface OutboxInput {
  /** The owner (account or organisation) told; null for the operator's events. */
  ownerId: string | null
  type: EventType
  deploymentId?: string | null
  payload: Record<string, unknown>
  /** Delivered to this webhook or channel only (a test event). */
  onlyTargetId?: string
}
