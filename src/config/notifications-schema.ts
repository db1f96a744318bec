import { z } from 'zod'
import { bool, commaList, int } from './zod-helpers.ts'

// Telling people what happened: the delivery of webhooks and channel messages, the operator's SMTP
// relay, and the operator's own alerts.

/**
 * After each failed attempt, the delay before the next (seconds, each jittered by ±20%): 14
 * attempts over about 3 days 3 hours. After the last, the delivery has failed.
 */
export const DEFAULT_RETRY_DELAYS_SECONDS = [
  5, 60, 300, 1800, 3600, 7200, 14_400, 28_800, 43_200, 43_200, 43_200, 43_200, 43_200,
]

const webhookUrl = z.url({ protocol: /^https?$/ }).max(2048)

const operatorSchema = z
  .strictObject({
    /** Addresses the operator's alerts are emailed to (through `notifications.smtp`). */
    emails: commaList(z.email().max(254), { max: 20 }).default([]),
    /** Standard Webhooks receivers of the operator's alerts, each with its `whsec_…` secret. */
    webhooks: z
      .array(
        z.strictObject({
          url: webhookUrl,
          secret: z.string().regex(/^whsec_[A-Za-z0-9+/=]{20,200}$/, 'must be a whsec_… secret'),
        }),
      )
      .max(20)
      .default([]),
    /** Slack or Discord incoming-webhook URLs for the operator's alerts. */
    slack: commaList(webhookUrl, { max: 20 }).default([]),
    discord: commaList(webhookUrl, { max: 20 }).default([]),
    /** Alerted when a provider's known capacity is this much in use (percent). */
    capacityPercent: int(1, 100).default(90),
    /** Alerted when a chain watcher is this many blocks behind the chain's confirmed head. */
    chainLagBlocks: int(1, 10_000_000).default(100),
    /** Alerted when this many deliveries are due and not yet made. */
    backlogDeliveries: int(1, 100_000_000).default(1000),
    /** How often the conditions are looked at. */
    checkIntervalSeconds: int(1, 3600).default(30),
  })
  .prefault({})

export const notificationsSchema = z
  .strictObject({
    retryDelaysSeconds: commaList(
      z.coerce
        .number()
        .min(0.01)
        .max(7 * 86_400),
      { min: 1, max: 30 },
    ).default(DEFAULT_RETRY_DELAYS_SECONDS),
    /** An attempt succeeds on a 2xx answered within this time. */
    attemptTimeoutSeconds: int(1, 60).default(10),
    /** Attempts in flight from one process, over all targets. */
    concurrency: int(1, 4096).default(128),
    /** Attempts in flight at one webhook or channel, so one slow target never holds the others. */
    concurrencyPerTarget: int(1, 256).default(4),
    /**
     * Attempts in flight for one owner over all its webhooks and channels (across processes), so
     * one owner's many slow receivers never hold the slots every owner shares.
     */
    concurrencyPerOwner: int(1, 4096).default(32),
    /** The most of an answer berth reads; the rest is not read. */
    maxResponseBytes: int(0, 10 * 1024 * 1024).default(64 * 1024),
    /** Events, finished deliveries and in-app notifications older than this are deleted. */
    retentionDays: int(1, 3650).default(30),
    /** Webhooks and channels one owner may have. */
    maxTargetsPerOwner: int(1, 1000).default(20),
    /** Telegram's Bot API (a local one, or a test receiver). */
    telegramApiUrl: z.url({ protocol: /^https?$/ }).default('https://api.telegram.org'),
    /** The operator's SMTP relay for email channels; without a host, email channels are refused. */
    smtp: z
      .strictObject({
        host: z.string().min(1).max(253).optional(),
        port: int(1, 65535).default(587),
        /** TLS from the start (port 465); otherwise STARTTLS when the server offers it. */
        secure: bool.default(false),
        user: z.string().min(1).max(256).optional(),
        password: z.string().min(1).max(1024).optional(),
        from: z.string().min(3).max(320).default('berth <berth@localhost>'),
      })
      .prefault({}),
    operator: operatorSchema,
  })
  .superRefine((n, ctx) => {
    // A delivery that fails for good looks for a success at its target since it was made; a
    // retention shorter than the schedule would have deleted those, turning healthy targets off.
    const scheduleDays = (n.retryDelaysSeconds.reduce((a, b) => a + b, 0) * 1.2) / 86_400
    if (n.retentionDays <= scheduleDays) {
      ctx.addIssue({
        code: 'custom',
        path: ['retentionDays'],
        message: `must be longer than the retry schedule (${scheduleDays.toFixed(1)} days with its jitter)`,
      })
    }
  })
  .prefault({})

export type NotificationsConfig = z.output<typeof notificationsSchema>
