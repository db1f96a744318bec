import type { Command } from 'commander'
import type { HttpClient } from '../../client/http-client.ts'
import type { TargetView as Target } from '../../notify/target-view.ts'
import { exitCodes } from '../exit-codes.ts'
import { renderTable } from '../output.ts'
import type { Action, CommandContext } from './context.ts'
import { parseCount } from './list.ts'

// `berth webhooks …`, `berth channels …` and `berth notifications`: where the events of the
// account (or organisation) commands act for are told, and what was told.

interface Delivery {
  id: string
  eventId: string
  eventType: string
  state: string
  attempts: number
  statusCode: number | null
  error: string | null
  lastAttemptAt: string | null
  nextAttemptAt: string | null
}

const typesOf = (value: string | undefined) =>
  value
    ? value
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean)
    : []

const stateOf = (t: Target) =>
  !t.verified ? 'unverified' : t.enabled ? 'on' : `off${t.disabledReason ? ` (${t.disabledReason})` : ''}`

/** The commands webhooks and channels share, on their own base path. */
function registerShared(group: Command, action: Action, base: string, noun: string): void {
  group
    .command('ls')
    .description(`your ${noun}s`)
    .action(
      action(async (ctx) => {
        const { items } = await ctx.client().get<{ items: Target[] }>(base)
        ctx.print({ items }, () =>
          items.length === 0
            ? `no ${noun}s\n`
            : renderTable(
                ['ID', 'KIND', 'WHERE', 'EVENTS', 'STATE'],
                items.map((t) => [t.id, t.kind, t.shown, t.eventTypes.join(',') || 'all', stateOf(t)]),
              ),
        )
        return exitCodes.ok
      }),
    )
  const patch = (ctx: CommandContext, id: string, body: Record<string, unknown>) =>
    ctx.client().request<Target>('PATCH', `${base}/${encodeURIComponent(id)}`, { body })
  for (const [name, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    group
      .command(`${name} <id>`)
      .description(`${name} a ${noun}`)
      .action(
        action(async (ctx, id: string) => {
          const target = await patch(ctx, id, { enabled })
          ctx.print(target, () => `${noun} ${target.id} is ${stateOf(target)}\n`)
          return exitCodes.ok
        }),
      )
  }
  group
    .command('events <id> <types>')
    .description(`the event types a ${noun} is told, comma-separated ("all" for every type)`)
    .action(
      action(async (ctx, id: string, types: string) => {
        const target = await patch(ctx, id, { eventTypes: types === 'all' ? [] : typesOf(types) })
        ctx.print(
          target,
          () => `${noun} ${target.id} is told ${target.eventTypes.join(', ') || 'every event'}\n`,
        )
        return exitCodes.ok
      }),
    )
  group
    .command('rm <id>')
    .description(`delete a ${noun} (what still waits for it is cancelled)`)
    .action(
      action(async (ctx, id: string) => {
        await ctx.client().del(`${base}/${encodeURIComponent(id)}`)
        ctx.print({ deleted: id }, () => `deleted ${noun} ${id}\n`)
        return exitCodes.ok
      }),
    )
  group
    .command('test <id>')
    .description(`send a ${noun} a webhook.test event`)
    .action(
      action(async (ctx, id: string) => {
        const sent = await ctx.client().post(`${base}/${encodeURIComponent(id)}/test`)
        ctx.print(sent, () => `a test event is on its way to ${noun} ${id}\n`)
        return exitCodes.ok
      }),
    )
  group
    .command('deliveries <id>')
    .description(`what was delivered to a ${noun}, newest first`)
    .option('--limit <n>', 'at most this many', parseCount, 20)
    .action(
      action(async (ctx, id: string, opts: { limit: number }) => {
        const { items } = await ctx
          .client()
          .get<{ items: Delivery[] }>(`${base}/${encodeURIComponent(id)}/deliveries`, {
            query: { limit: opts.limit },
          })
        ctx.print({ items }, () =>
          renderTable(
            ['DELIVERY', 'EVENT', 'STATE', 'TRIES', 'LAST', 'NEXT'],
            items.map((d) => [
              d.id,
              d.eventType,
              d.state,
              String(d.attempts),
              d.statusCode !== null ? String(d.statusCode) : (d.error ?? ''),
              d.nextAttemptAt ?? '',
            ]),
          ),
        )
        return exitCodes.ok
      }),
    )
  group
    .command('retry <id> <delivery>')
    .description('try a delivery again now')
    .action(
      action(async (ctx, id: string, delivery: string) => {
        await ctx
          .client()
          .post(`${base}/${encodeURIComponent(id)}/deliveries/${encodeURIComponent(delivery)}/retry`)
        ctx.print({ retried: delivery }, () => `delivery ${delivery} is tried again\n`)
        return exitCodes.ok
      }),
    )
}

async function created(ctx: CommandContext, client: HttpClient, path: string, body: unknown) {
  const target = await client.post<Target & { secret?: string }>(path, body)
  ctx.print(target, () =>
    [
      `created ${target.kind} ${target.id} → ${target.shown}`,
      target.secret ? `signing secret (shown once, keep it): ${target.secret}` : '',
      target.verified
        ? ''
        : `a code was mailed to ${target.shown}: berth channels verify ${target.id} <code>`,
    ]
      .filter(Boolean)
      .map((line) => `${line}\n`)
      .join(''),
  )
  return exitCodes.ok
}

export function registerNotify(program: Command, action: Action): void {
  const hooks = program
    .command('webhooks')
    .description('webhooks told your events, signed per Standard Webhooks')
  hooks
    .command('add <url>')
    .description('add a webhook; prints its signing secret once')
    .option('--events <types>', 'comma-separated event types (default: every type)')
    .option('--description <text>', 'a note for yourself')
    .action(
      action((ctx, url: string, opts: { events?: string; description?: string }) =>
        created(ctx, ctx.client(), '/v1/webhooks', {
          url,
          eventTypes: typesOf(opts.events),
          ...(opts.description ? { description: opts.description } : {}),
        }),
      ),
    )
  hooks
    .command('rotate-secret <id>')
    .description('a new signing secret; the old one keeps signing too for 24 hours')
    .action(
      action(async (ctx, id: string) => {
        const rotated = await ctx
          .client()
          .post<{ secret: string; previousSecretValidUntil: string }>(
            `/v1/webhooks/${encodeURIComponent(id)}/rotate-secret`,
          )
        ctx.print(
          rotated,
          () =>
            `new signing secret (shown once): ${rotated.secret}\nthe old one signs too until ${rotated.previousSecretValidUntil}\n`,
        )
        return exitCodes.ok
      }),
    )
  registerShared(hooks, action, '/v1/webhooks', 'webhook')

  const channels = program
    .command('channels')
    .description('email, Slack, Discord and Telegram channels told your events')
  channels
    .command('add <kind> <where> [chat]')
    .description(
      'add a channel: email <address>, slack <webhook URL>, discord <webhook URL>, or telegram <bot token> <chat id>',
    )
    .option('--events <types>', 'comma-separated event types (default: every type)')
    .action(
      action((ctx, kind: string, where: string, chat: string | undefined, opts: { events?: string }) => {
        const place =
          kind === 'email'
            ? { to: where }
            : kind === 'telegram'
              ? { botToken: where, chatId: chat ?? '' }
              : { url: where }
        return created(ctx, ctx.client(), '/v1/notification-channels', {
          kind,
          ...place,
          eventTypes: typesOf(opts.events),
        })
      }),
    )
  channels
    .command('verify <id> <code>')
    .description('confirm an email channel with the code mailed to it')
    .action(
      action(async (ctx, id: string, code: string) => {
        const target = await ctx
          .client()
          .post<Target>(`/v1/notification-channels/${encodeURIComponent(id)}/verify`, { code })
        ctx.print(target, () => `${target.shown} is confirmed\n`)
        return exitCodes.ok
      }),
    )
  registerShared(channels, action, '/v1/notification-channels', 'channel')

  program
    .command('notifications')
    .description('what berth told you, newest first')
    .option('--unread', 'only the unread ones')
    .option('--limit <n>', 'at most this many', parseCount, 20)
    .option('--mark-read', 'then mark them all read')
    .action(
      action(async (ctx, opts: { unread?: boolean; limit: number; markRead?: boolean }) => {
        const client = ctx.client()
        const page = await client.get<{
          items: Array<{ createdAt: string; type: string; message: string; read: boolean }>
          unread: number
        }>('/v1/notifications', { query: { unread: opts.unread ? 1 : undefined, limit: opts.limit } })
        ctx.print(page, () =>
          page.items.length === 0
            ? 'no notifications\n'
            : `${page.unread} unread\n${renderTable(
                ['AT', '', 'TYPE', 'MESSAGE'],
                page.items.map((n) => [n.createdAt, n.read ? '' : '•', n.type, n.message]),
              )}`,
        )
        if (opts.markRead) await client.post('/v1/notifications/read', {})
        return exitCodes.ok
      }),
    )
}
