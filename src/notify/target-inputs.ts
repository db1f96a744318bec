import { isIP } from 'node:net'
import { z } from 'zod'
import { invalidInput } from '../domain/errors.ts'
import { ownerEventTypes } from '../domain/event-types.ts'
import { type AllowList, isInternalAddress, plainAddress } from '../outbound/address-policy.ts'

// What an owner gives to be told: a webhook's URL, a channel's address, the event types it wants.
// Checked here at the edge; the guarded client checks again, after resolving, at every delivery.

/** Event types an owner may subscribe to (a test event goes only where it was asked for). */
export const subscribableTypes = ownerEventTypes.filter((t) => t !== 'webhook.test')

export const eventTypesInput = z
  .array(z.enum(subscribableTypes as unknown as [string, ...string[]]))
  .max(subscribableTypes.length)
  .refine((types) => new Set(types).size === types.length, 'lists an event type twice')
  .describe('Event types told here; empty or absent: all of them')

const url = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
  .max(2048)
  .refine((u) => !URL.canParse(u) || (!new URL(u).username && !new URL(u).password), {
    message: 'must not hold a user name or password',
  })

const description = z.string().max(256)

export const webhookInput = z.strictObject({
  url,
  eventTypes: eventTypesInput.default([]),
  description: description.default(''),
  enabled: z.boolean().default(true),
})
export type WebhookInput = z.output<typeof webhookInput>

export const webhookPatch = z
  .strictObject({
    url: url.optional(),
    eventTypes: eventTypesInput.optional(),
    description: description.optional(),
    enabled: z.boolean().optional(),
  })
  .refine((p) => Object.keys(p).length > 0, 'changes nothing: give url, eventTypes, description or enabled')
export type WebhookPatch = z.output<typeof webhookPatch>

const common = { eventTypes: eventTypesInput.default([]), description: description.default('') }

export const channelInput = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('email'), to: z.email().max(254), ...common }),
  z.strictObject({ kind: z.literal('slack'), url: url.describe('A Slack incoming-webhook URL'), ...common }),
  z.strictObject({ kind: z.literal('discord'), url: url.describe('A Discord webhook URL'), ...common }),
  z.strictObject({
    kind: z.literal('telegram'),
    botToken: z.string().regex(/^\d{1,20}:[A-Za-z0-9_-]{20,100}$/, 'must be a bot token such as 123456:ABC…'),
    chatId: z.string().regex(/^-?\d{1,20}$|^@[A-Za-z0-9_]{5,32}$/, 'must be a chat id or @channel name'),
    ...common,
  }),
])
export type ChannelInput = z.output<typeof channelInput>

export const channelPatch = z
  .strictObject({
    eventTypes: eventTypesInput.optional(),
    description: description.optional(),
    enabled: z.boolean().optional(),
  })
  .refine((p) => Object.keys(p).length > 0, 'changes nothing: give eventTypes, description or enabled')
export type ChannelPatch = z.output<typeof channelPatch>

/** What berth needs to reach a target: sealed at rest, since most of it is a credential. */
export type TargetConfig =
  | { kind: 'webhook'; url: string; secret: string; previousSecret?: string }
  | { kind: 'email'; to: string }
  | { kind: 'slack' | 'discord'; url: string }
  | { kind: 'telegram'; botToken: string; chatId: string }

/** What a list may show of a target: never a token. */
export function shownOf(config: TargetConfig): string {
  switch (config.kind) {
    case 'webhook': {
      // Receivers often carry their token in the path or the query: lists show the scheme, the
      // host and the path's last characters, enough to tell one's own webhooks apart.
      const u = new URL(config.url)
      const tail = u.pathname.length > 1 ? `/…${u.pathname.slice(-4)}` : ''
      return `${u.protocol}//${u.host}${tail}`
    }
    case 'email':
      return config.to
    case 'slack':
    case 'discord': {
      // A chat webhook's URL is its credential: its host and last characters are enough to tell.
      const u = new URL(config.url)
      return `${u.host}/…${u.pathname.slice(-4)}`
    }
    case 'telegram':
      return `telegram chat ${config.chatId}`
  }
}

/**
 * Refuses at once a URL whose host is written as an internal address (or `localhost`), unless the
 * operator allows it: the owner hears it now rather than through failing deliveries. Names are
 * resolved only when delivering, where the guarded client checks every address again.
 */
export function checkTargetUrl(raw: string, allow: AllowList): void {
  const u = new URL(raw)
  const host = plainAddress(u.hostname).toLowerCase()
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80))
  const literal = isIP(host) !== 0
  const local = host === 'localhost' || host.endsWith('.localhost')
  if ((literal && isInternalAddress(host)) || local) {
    const address = literal ? host : '127.0.0.1'
    if (!allow.allows({ host, port, address })) {
      throw invalidInput(`url: ${host} is not a public address`)
    }
  }
}
