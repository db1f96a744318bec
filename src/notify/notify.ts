import nodemailer from 'nodemailer'
import type { Logger } from 'pino'
import { publicUrlOf } from '../config/load.ts'
import type { Config } from '../config/schema.ts'
import type { Database } from '../db/client.ts'
import { actingAccount, type Principal } from '../identity/principal.ts'
import { parseAllowList } from '../outbound/address-policy.ts'
import { createOutboundClient, type Resolved } from '../outbound/guarded-client.ts'
import type { Vault } from '../secrets/vault.ts'
import { createInbox, hiddenEventTypes } from './inbox.ts'
import { type OperatorAlertDeps, startOperatorAlerts } from './operator-alerts.ts'
import { syncOperatorTargets } from './operator-targets.ts'
import { publishBatch } from './publisher.ts'
import { pruneTold } from './retention.ts'
import { createSenderLoop } from './sender-loop.ts'
import type { Attempt, SendContext } from './senders.ts'
import { changeTargetAudited } from './target-audit.ts'
import type { Family } from './target-view.ts'
import { checkSendRate, checkSubscription, createTargets } from './targets.ts'

// Telling people what happened, put together: the publisher fanning the outbox out, the sender
// making delivery attempts, the owners' webhooks and channels, their inbox, and the operator's own
// targets. Both loops wake on a NOTIFY (a committed event, a new delivery) and poll every second.

const PUBLISH_BATCH = 500
const POLL_MS = 1000
/** How often what is past its retention is deleted (every replica does it; deletions do not clash). */
const PRUNE_MS = 3600_000

export interface NotifyDeps {
  database: Database
  config: Config
  vault: Pick<Vault, 'seal' | 'open'>
  logger: Logger
  /** Name resolution for deliveries (tests inject one; no test asks a real DNS server). */
  resolve?: (hostname: string) => Promise<Resolved[]>
  now?: () => Date
  attempted?: (attempt: Attempt, kind: string) => void
  /** What the operator's alerts look at; without it (or without operator targets), none are raised. */
  watched?: Omit<OperatorAlertDeps, 'database' | 'settings' | 'logger'>
}

export function createNotify(deps: NotifyDeps) {
  const { database, config, logger } = deps
  const settings = config.notifications
  const publicUrl = publicUrlOf(config)
  const smtp = settings.smtp
  const mailer = smtp.host
    ? nodemailer.createTransport({
        host: smtp.host,
        port: smtp.port,
        secure: smtp.secure,
        ...(smtp.user ? { auth: { user: smtp.user, pass: smtp.password ?? '' } } : {}),
        connectionTimeout: settings.attemptTimeoutSeconds * 1000,
        greetingTimeout: settings.attemptTimeoutSeconds * 1000,
        socketTimeout: settings.attemptTimeoutSeconds * 1000,
      })
    : undefined
  const ctx: SendContext = {
    outbound: createOutboundClient({
      allow: config.outbound.allow,
      timeoutMs: settings.attemptTimeoutSeconds * 1000,
      maxBytes: settings.maxResponseBytes,
      maxRedirects: 0,
      ...(deps.resolve ? { resolve: deps.resolve } : {}),
    }),
    mailer,
    mailFrom: smtp.from,
    telegramApiUrl: settings.telegramApiUrl,
    publicUrl,
    timeoutSeconds: settings.attemptTimeoutSeconds,
    now: deps.now ?? (() => new Date()),
  }
  const targets = createTargets({
    db: database.db,
    vault: deps.vault,
    allow: parseAllowList(config.outbound.allow),
    maxPerOwner: settings.maxTargetsPerOwner,
    emailEnabled: mailer !== undefined,
    async sendVerification(to, code) {
      if (!mailer) throw new Error('no SMTP relay')
      await mailer.sendMail({
        from: smtp.from,
        to,
        subject: 'Confirm this address for berth notifications',
        text: `Your berth confirmation code is ${code}\n\nEnter it to receive notifications at this address. If you did not ask for them, ignore this email.`,
      })
    },
  })
  const inbox = createInbox(database.db)
  const sender = createSenderLoop({
    database,
    config: settings,
    ctx,
    logger,
    openConfig: (row) => targets.openConfig(row),
    ...(deps.attempted ? { attempted: deps.attempted } : {}),
  })

  let publishing: Promise<void> | undefined
  let again = false
  /** Publishes everything waiting; a call while one runs makes it run once more. */
  function publish(): Promise<void> {
    if (publishing) {
      again = true
      return publishing
    }
    publishing = (async () => {
      do {
        again = false
        let published = 0
        for (let n = PUBLISH_BATCH; n === PUBLISH_BATCH; published += n) {
          n = await publishBatch(database, publicUrl, PUBLISH_BATCH)
        }
        if (published > 0) sender.wake()
      } while (again)
    })()
      .catch((error: unknown) => logger.warn({ err: error }, 'publishing events failed; trying again'))
      .finally(() => {
        publishing = undefined
      })
    return publishing
  }

  const unlisten: Array<() => Promise<void>> = []
  let timer: NodeJS.Timeout | undefined
  let pruneTimer: NodeJS.Timeout | undefined
  let pruning: Promise<unknown> | undefined
  let stopAlerts: (() => Promise<void>) | undefined

  return {
    targets,
    inbox,
    /** Publishes what is waiting now (tests and the routes that just wrote an event). */
    publish,
    async retryDelivery(principal: Principal, family: Family, targetId: string, deliveryId: string) {
      const row = await targets.find(principal, family, targetId)
      checkSubscription(principal, row.eventTypes)
      await changeTargetAudited(database.db, principal, `${family}.retry`, targetId, {}, async (tx) => {
        await checkSendRate(tx, actingAccount(principal).id)
        await inbox.retry(targetId, deliveryId, tx)
      })
      sender.wake()
    },
    async deliveries(
      principal: Principal,
      family: Family,
      targetId: string,
      query: { before?: string; limit: number },
    ) {
      await targets.find(principal, family, targetId)
      return inbox.deliveries(targetId, { ...query, hidden: hiddenEventTypes(principal) })
    },
    async start() {
      const operatorTargets = await syncOperatorTargets(database, deps.vault, settings.operator)
      if (deps.watched && operatorTargets > 0) {
        const watch = { ...deps.watched, database, settings: settings.operator, logger }
        stopAlerts = startOperatorAlerts(watch, settings.operator.checkIntervalSeconds)
      }
      unlisten.push(await database.listen('berth_outbox', () => void publish()))
      unlisten.push(await database.listen('berth_deliveries', () => sender.wake()))
      sender.start()
      const tick = () => {
        void publish().finally(() => {
          if (timer) timer = setTimeout(tick, POLL_MS)
        })
      }
      timer = setTimeout(tick, 0)
      const prune = () => {
        pruning = pruneTold(database, settings.retentionDays)
          .then((pruned) => logger.debug({ pruned }, 'deleted what was past its retention'))
          .catch((error: unknown) => logger.warn({ err: error }, 'deleting old events failed'))
      }
      prune()
      pruneTimer = setInterval(prune, PRUNE_MS)
      pruneTimer.unref()
    },
    async stop() {
      const t = timer
      timer = undefined
      clearTimeout(t)
      clearInterval(pruneTimer)
      await pruning
      await stopAlerts?.()
      await Promise.all(unlisten.splice(0).map((u) => u()))
      await publishing
      await sender.stop()
      mailer?.close()
    },
  }
}

export type Notify = ReturnType<typeof createNotify>
