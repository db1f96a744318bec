import type { Transporter } from 'nodemailer'
import { DeadlineError, withDeadline } from '../domain/delay.ts'
import type { OutboundClient } from '../outbound/guarded-client.ts'
import { type Message, messageOf, type TellableEvent } from './messages.ts'
import { signatureHeader } from './signing.ts'
import type { TargetConfig } from './target-inputs.ts'

// One attempt at telling one target about one event. Webhooks get the event itself, signed;
// chat and email get a short human message. Every URL goes through the guarded client; email
// goes to the operator's relay.

export interface Attempt {
  ok: boolean
  /** The receiver's HTTP status (or SMTP reply code), when it answered. */
  status: number | null
  latencyMs: number
  /** Why it failed, for the delivery log: a status, a refusal or a timeout; never a secret. */
  error?: string
  /** The receiver said it is gone for good (a 410): the target is turned off. */
  gone?: boolean
}

export interface SendContext {
  outbound: OutboundClient
  mailer: Pick<Transporter, 'sendMail'> | undefined
  mailFrom: string
  telegramApiUrl: string
  publicUrl: URL
  timeoutSeconds: number
  now(): Date
}

/** The event as webhooks carry it and GET /v1/events lists it. */
export function envelopeOf(event: TellableEvent) {
  return {
    id: event.id,
    type: event.type,
    timestamp: event.createdAt.toISOString(),
    deploymentId: event.deploymentId,
    data: event.payload,
  }
}

/**
 * What an owner sees of a failed request: that it timed out, or that the target could not be
 * reached. Never why not: whether an internal name resolves or answers stays in berth's log.
 */
const reasonOf = (error: unknown, timeoutSeconds: number): string => {
  const cause = (error as { cause?: { name?: string } }).cause
  if (cause?.name === 'TimeoutError' || cause?.name === 'AbortError') {
    return `no answer within ${timeoutSeconds} s`
  }
  return ((error as Error).message ?? 'the target could not be reached').slice(0, 200)
}

async function post(
  ctx: SendContext,
  url: string,
  body: string,
  headers: Record<string, string>,
  gone: (status: number) => boolean,
): Promise<Attempt> {
  const started = performance.now()
  try {
    const response = await ctx.outbound.fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      what: 'the target',
      truncate: true,
    })
    const latencyMs = Math.round(performance.now() - started)
    const ok = response.status >= 200 && response.status < 300
    return {
      ok,
      status: response.status,
      latencyMs,
      ...(ok ? {} : { error: `answered ${response.status}` }),
      ...(gone(response.status) ? { gone: true } : {}),
    }
  } catch (error) {
    return {
      ok: false,
      status: null,
      latencyMs: Math.round(performance.now() - started),
      error: reasonOf(error, ctx.timeoutSeconds),
    }
  }
}

function chatBody(config: TargetConfig, message: Message): string {
  const line = message.link ? `${message.title}\n${message.link}` : message.title
  switch (config.kind) {
    case 'slack':
      // Slack reads <, > and & as markup: escaped, a tenant's deployment name cannot mention anyone.
      return JSON.stringify({
        text: message.link
          ? `${slackEscape(message.title)}\n<${message.link}|Open the deployment>`
          : slackEscape(message.title),
      })
    case 'discord':
      // No mentions of any kind, whatever a name holds (@everyone included).
      return JSON.stringify({ content: line.slice(0, 2000), allowed_mentions: { parse: [] } })
    case 'telegram':
      return JSON.stringify({ chat_id: config.chatId, text: line, disable_web_page_preview: true })
    default:
      return ''
  }
}

const slackEscape = (text: string) =>
  text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')

export async function attempt(
  config: TargetConfig,
  event: TellableEvent,
  secretsValid: { previous: boolean },
  ctx: SendContext,
): Promise<Attempt> {
  switch (config.kind) {
    case 'webhook': {
      const body = JSON.stringify(envelopeOf(event))
      const timestamp = Math.floor(ctx.now().getTime() / 1000)
      const secrets =
        secretsValid.previous && config.previousSecret
          ? [config.secret, config.previousSecret]
          : [config.secret]
      return post(
        ctx,
        config.url,
        body,
        {
          'webhook-id': event.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signatureHeader(secrets, event.id, timestamp, body),
        },
        (status) => status === 410,
      )
    }
    case 'slack':
    case 'discord':
      // A deleted chat webhook answers 404 (or 410): nothing will ever arrive there again.
      return post(
        ctx,
        config.url,
        chatBody(config, messageOf(event, ctx.publicUrl)),
        {},
        (s) => s === 404 || s === 410,
      )
    case 'telegram': {
      // Joined as text: `bot123:…` read as a relative URL would be taken for a scheme.
      const url = `${ctx.telegramApiUrl.replace(/\/$/, '')}/bot${config.botToken}/sendMessage`
      return post(
        ctx,
        url,
        chatBody(config, messageOf(event, ctx.publicUrl)),
        {},
        (s) => s === 401 || s === 404,
      )
    }
    case 'email':
      return sendEmail(config.to, messageOf(event, ctx.publicUrl), ctx)
  }
}

async function sendEmail(to: string, message: Message, ctx: SendContext): Promise<Attempt> {
  const started = performance.now()
  if (!ctx.mailer) {
    return {
      ok: false,
      status: null,
      latencyMs: 0,
      error: 'no SMTP relay is configured (notifications.smtp.host)',
    }
  }
  try {
    // nodemailer's timeouts bound each step; this bounds the whole, so a relay answering a byte at
    // a time cannot hold the attempt past its claim (the attempt is then made again).
    const info = await withDeadline(
      ctx.mailer.sendMail({ from: ctx.mailFrom, to, subject: message.title, text: message.text }),
      ctx.timeoutSeconds * 1000,
    )
    const code = Number(/^(\d{3})/.exec(String(info.response ?? ''))?.[1] ?? 250)
    return { ok: true, status: code, latencyMs: Math.round(performance.now() - started) }
  } catch (error) {
    // The relay is the operator's: its own words (host names, accounts) are not the owner's to
    // read in a delivery log; its reply code says enough about the address.
    const code = (error as { responseCode?: number }).responseCode ?? null
    const text =
      error instanceof DeadlineError
        ? `the mail relay did not finish within ${ctx.timeoutSeconds} s`
        : code !== null
          ? `the mail relay refused the message (${code})`
          : 'the mail relay could not be reached'
    return { ok: false, status: code, latencyMs: Math.round(performance.now() - started), error: text }
  }
}
