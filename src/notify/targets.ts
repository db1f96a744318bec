import { randomUUID } from 'node:crypto'
import { and, count, desc, eq, lt, sql } from 'drizzle-orm'
import { type Db, queryRows, type Tx } from '../db/client.ts'
import { notifyTargets } from '../db/schema/index.ts'
import { BerthError, conflict, forbidden, invalidInput, notFound } from '../domain/errors.ts'
import { paymentEventTypes } from '../domain/event-types.ts'
import { appendOutbox } from '../events/outbox.ts'
import { actingAccount, allows, type Principal } from '../identity/principal.ts'
import type { AllowList } from '../outbound/address-policy.ts'
import type { Vault } from '../secrets/vault.ts'
import {
  codeDigest,
  codeMatches,
  countVerificationSend,
  VERIFY_ATTEMPTS,
  verificationCode,
} from './email-verification.ts'
import { newSigningSecret } from './signing.ts'
import { changeTargetAudited } from './target-audit.ts'
import {
  type ChannelInput,
  type ChannelPatch,
  checkTargetUrl,
  shownOf,
  type TargetConfig,
  type WebhookInput,
  type WebhookPatch,
} from './target-inputs.ts'
import { type Family, placeOf, type TargetRow, type TargetView, viewOf } from './target-view.ts'

// An owner's webhooks and channels: kept in one table (a webhook is a target of kind `webhook`),
// their credentials sealed, every change audited in its own transaction.

/** How long a rotated-out signing secret still signs, so receivers can move to the new one. */
export const PREVIOUS_SECRET_HOURS = 24
/** Test events one target may be sent a minute: enough to try a receiver, too few to flood it. */
export const TESTS_PER_MINUTE = 10

/**
 * Events about money go only to targets set up by someone who may read payments: a key or member
 * without payments:read names the types it wants (none of them about money) instead of all.
 */
export function checkSubscription(principal: Principal, eventTypes: readonly string[]): void {
  if (allows(principal, 'payments:read')) return
  const money =
    eventTypes.length === 0
      ? 'all event types'
      : eventTypes.find((t) => paymentEventTypes.includes(t as never))
  if (money) {
    throw forbidden(
      `subscribing to ${money} needs the payments:read scope; list the event types wanted, none about payments`,
    )
  }
}
/** Tests and retries one owner may ask for a minute, over all its targets. */
export const SENDS_PER_OWNER_PER_MINUTE = 30

/**
 * Refuses (429) a test or a retry past the owner's share: each sends a request to a URL of the
 * owner's choosing, and neither must become a way to send without bound. Counted in the audit
 * log, where each is written.
 */
export async function checkSendRate(tx: Tx, ownerId: string): Promise<void> {
  const [{ n } = { n: 0 }] = await queryRows<{ n: number }>(
    tx,
    sql`select count(*)::int as n from audit_entries
         where owner_id = ${ownerId} and at > now() - interval '1 minute'
           and action in ('webhook.test', 'channel.test', 'webhook.retry', 'channel.retry')`,
  )
  if (n >= SENDS_PER_OWNER_PER_MINUTE) {
    throw new BerthError(
      'rate_limited',
      `an owner may ask for ${SENDS_PER_OWNER_PER_MINUTE} tests and retries a minute`,
    )
  }
}

export interface TargetsDeps {
  db: Db
  vault: Pick<Vault, 'seal' | 'open'>
  allow: AllowList
  maxPerOwner: number
  /** Whether the operator set up an SMTP relay: without one, email channels are refused. */
  emailEnabled: boolean
  /** Sends an email channel its verification code; throws when it could not be sent. */
  sendVerification(to: string, code: string): Promise<void>
}

export function createTargets(deps: TargetsDeps) {
  const { db, vault } = deps
  const familyOf = (row: TargetRow): Family => (row.kind === 'webhook' ? 'webhook' : 'channel')

  async function find(principal: Principal, family: Family, id: string): Promise<TargetRow> {
    const [row] = await db
      .select()
      .from(notifyTargets)
      .where(and(eq(notifyTargets.id, id), eq(notifyTargets.ownerId, actingAccount(principal).id)))
    if (!row || familyOf(row) !== family) throw notFound(`${family} ${id}`)
    return row
  }

  /**
   * The target's row, locked until the transaction ends: changes that read its sealed config and
   * write a new one (a rotation, a new URL) happen one after the other, none lost.
   */
  async function locked(tx: Tx, id: string): Promise<TargetRow> {
    const [row] = await tx.select().from(notifyTargets).where(eq(notifyTargets.id, id)).for('update')
    if (!row) throw notFound(`target ${id}`)
    return row
  }

  async function insert(
    principal: Principal,
    config: TargetConfig,
    fields: {
      eventTypes: string[]
      description: string
      enabled?: boolean
      /** An email channel: the digest of the code about to be mailed to `config.to`. */
      verifyCodeHash?: string
    },
  ): Promise<TargetRow> {
    const ownerId = actingAccount(principal).id
    checkSubscription(principal, fields.eventTypes)
    const id = randomUUID()
    const family = config.kind === 'webhook' ? 'webhook' : 'channel'
    return changeTargetAudited(
      db,
      principal,
      `${family}.create`,
      id,
      { kind: config.kind, shown: shownOf(config) },
      async (tx) => {
        // Counted under the owner's row lock, so concurrent creates cannot pass the limit together.
        await tx.execute(sql`select 1 from accounts where id = ${ownerId} for update`)
        const [{ n } = { n: 0 }] = await tx
          .select({ n: count() })
          .from(notifyTargets)
          .where(eq(notifyTargets.ownerId, ownerId))
        if (n >= deps.maxPerOwner) {
          throw new BerthError(
            'quota_exceeded',
            `an owner may have ${deps.maxPerOwner} webhooks and channels`,
            {
              details: { quota: 'notifyTargets', limit: deps.maxPerOwner, used: n, requested: 1 },
            },
          )
        }
        if (config.kind === 'email') await countVerificationSend(tx, ownerId, config.to)
        const [row] = await tx
          .insert(notifyTargets)
          .values({
            id,
            ownerId,
            kind: config.kind,
            description: fields.description,
            eventTypes: fields.eventTypes,
            enabled: fields.enabled ?? true,
            shown: shownOf(config),
            sealed: await vault.seal(placeOf({ id, ownerId }), JSON.stringify(config), tx),
            verifyCodeHash: fields.verifyCodeHash ?? null,
          })
          .returning()
        return row!
      },
    )
  }

  async function openConfig(row: TargetRow, q?: Db | Tx): Promise<TargetConfig> {
    return JSON.parse(await vault.open(placeOf(row), row.sealed, q)) as TargetConfig
  }

  async function list(principal: Principal, family: Family): Promise<TargetView[]> {
    const rows = await db
      .select()
      .from(notifyTargets)
      .where(eq(notifyTargets.ownerId, actingAccount(principal).id))
      .orderBy(desc(notifyTargets.createdAt))
    return rows.filter((r) => familyOf(r) === family).map(viewOf)
  }

  return {
    find,
    list,
    openConfig,
    get: async (principal: Principal, family: Family, id: string) =>
      viewOf(await find(principal, family, id)),

    async createWebhook(principal: Principal, input: WebhookInput): Promise<TargetView & { secret: string }> {
      checkTargetUrl(input.url, deps.allow)
      const secret = newSigningSecret()
      const row = await insert(principal, { kind: 'webhook', url: input.url, secret }, input)
      return { ...viewOf(row), secret }
    },

    async createChannel(principal: Principal, input: ChannelInput): Promise<TargetView> {
      if (input.kind === 'slack' || input.kind === 'discord') checkTargetUrl(input.url, deps.allow)
      const { eventTypes, description, ...rest } = input
      if (input.kind !== 'email') {
        return viewOf(await insert(principal, rest as TargetConfig, { eventTypes, description }))
      }
      if (!deps.emailEnabled) {
        throw invalidInput(
          'kind: email channels need the operator to set up an SMTP relay (notifications.smtp)',
        )
      }
      const code = verificationCode()
      const row = await insert(
        principal,
        { kind: 'email', to: input.to },
        {
          eventTypes,
          description,
          verifyCodeHash: codeDigest(code),
        },
      )
      // Sent after the commit (a database transaction is never held open for SMTP); an address
      // that cannot be written to leaves no channel behind.
      try {
        await deps.sendVerification(input.to, code)
      } catch (cause) {
        await db.delete(notifyTargets).where(eq(notifyTargets.id, row.id))
        if (cause instanceof BerthError) throw cause
        throw new BerthError(
          'provider_unavailable',
          `the verification email to ${input.to} could not be sent`,
          {
            cause,
          },
        )
      }
      return viewOf(row)
    },

    async verify(principal: Principal, id: string, code: string): Promise<TargetView> {
      const row = await find(principal, 'channel', id)
      if (row.kind !== 'email') throw conflict('only email channels are verified')
      if (row.verifiedAt) return viewOf(row)
      // Each try takes one of the attempts first, in one statement: guesses sent side by side
      // cannot get past the limit together.
      const [tried] = await db
        .update(notifyTargets)
        .set({ verifyAttempts: sql`${notifyTargets.verifyAttempts} + 1` })
        .where(and(eq(notifyTargets.id, id), lt(notifyTargets.verifyAttempts, VERIFY_ATTEMPTS)))
        .returning({ id: notifyTargets.id })
      if (!tried || !row.verifyCodeHash) {
        throw new BerthError('rate_limited', 'too many wrong codes: delete the channel and create it again')
      }
      if (!codeMatches(code, row.verifyCodeHash))
        throw invalidInput('code: not the code sent to this address')
      const updated = await changeTargetAudited(
        db,
        principal,
        'channel.verify',
        id,
        { shown: row.shown },
        async (tx) => {
          await locked(tx, id)
          const [u] = await tx
            .update(notifyTargets)
            .set({ verifiedAt: sql`now()`, verifyCodeHash: null, updatedAt: sql`now()` })
            .where(eq(notifyTargets.id, id))
            .returning()
          return u!
        },
      )
      return viewOf(updated)
    },

    async update(principal: Principal, family: Family, id: string, patch: WebhookPatch | ChannelPatch) {
      const row = await find(principal, family, id)
      // A target told about money is changed (its URL above all) only by one who may read payments.
      checkSubscription(principal, patch.eventTypes ?? row.eventTypes)
      const url = 'url' in patch ? patch.url : undefined
      if (url) checkTargetUrl(url, deps.allow)
      // The audit entry names the new URL as lists show it: a full URL may carry a token.
      const detail = { ...patch, ...(url ? { url: shownOf({ kind: row.kind, url } as TargetConfig) } : {}) }
      const updated = await changeTargetAudited(db, principal, `${family}.update`, id, detail, async (tx) => {
        const current = await locked(tx, id)
        let sealed: { sealed: string; shown: string } | undefined
        if (url) {
          const config = { ...(await openConfig(current, tx)), url } as TargetConfig
          sealed = {
            sealed: await vault.seal(placeOf(row), JSON.stringify(config), tx),
            shown: shownOf(config),
          }
        }
        const [u] = await tx
          .update(notifyTargets)
          .set({
            ...(patch.eventTypes ? { eventTypes: patch.eventTypes } : {}),
            ...(patch.description !== undefined ? { description: patch.description } : {}),
            // Turned on again by its owner: whatever berth turned it off for is forgotten.
            ...(patch.enabled !== undefined ? { enabled: patch.enabled, disabledReason: null } : {}),
            ...sealed,
            updatedAt: sql`now()`,
          })
          .where(eq(notifyTargets.id, id))
          .returning()
        return u!
      })
      return viewOf(updated)
    },

    async remove(principal: Principal, family: Family, id: string): Promise<void> {
      const row = await find(principal, family, id)
      await changeTargetAudited(db, principal, `${family}.delete`, id, { shown: row.shown }, async (tx) => {
        // The target first, then its deliveries: the order turning a target off takes them in.
        await locked(tx, id)
        await tx.execute(
          sql`update notify_deliveries set state = 'cancelled', last_error = 'the target was deleted'
               where target_id = ${id} and state = 'pending'`,
        )
        await tx.delete(notifyTargets).where(eq(notifyTargets.id, id))
      })
    },

    /** A new signing secret; the old one keeps signing (a second signature) for 24 hours. */
    async rotateSecret(principal: Principal, id: string) {
      const secret = newSigningSecret()
      const until = new Date(Date.now() + PREVIOUS_SECRET_HOURS * 3600_000)
      await find(principal, 'webhook', id)
      const updated = await changeTargetAudited(
        db,
        principal,
        'webhook.rotate_secret',
        id,
        {},
        async (tx) => {
          const current = await locked(tx, id)
          const config = (await openConfig(current, tx)) as Extract<TargetConfig, { kind: 'webhook' }>
          const next: TargetConfig = {
            kind: 'webhook',
            url: config.url,
            secret,
            previousSecret: config.secret,
          }
          const [u] = await tx
            .update(notifyTargets)
            .set({
              sealed: await vault.seal(placeOf(current), JSON.stringify(next), tx),
              previousSecretUntil: until,
              updatedAt: sql`now()`,
            })
            .where(eq(notifyTargets.id, id))
            .returning()
          return u!
        },
      )
      return { ...viewOf(updated), secret }
    },

    /** Sends a `webhook.test` event to this target alone, through the usual delivery. */
    async test(principal: Principal, family: Family, id: string): Promise<{ eventType: string }> {
      const row = await find(principal, family, id)
      if (row.kind === 'email' && !row.verifiedAt) throw conflict('the email address is not verified yet')
      await changeTargetAudited(db, principal, `${family}.test`, id, {}, async (tx) => {
        await locked(tx, id)
        await checkSendRate(tx, row.ownerId!)
        const [{ n } = { n: 0 }] = await queryRows<{ n: number }>(
          tx,
          sql`select count(*)::int as n from outbox_events
               where only_target_id = ${id} and created_at > now() - interval '1 minute'`,
        )
        if (n >= TESTS_PER_MINUTE) {
          throw new BerthError(
            'rate_limited',
            `a target may be sent ${TESTS_PER_MINUTE} test events a minute`,
          )
        }
        await appendOutbox(tx, [
          {
            ownerId: row.ownerId,
            type: 'webhook.test',
            onlyTargetId: id,
            payload: { targetId: id, message: 'a test event asked for by its owner' },
          },
        ])
      })
      return { eventType: 'webhook.test' }
    },
  }
}

export type Targets = ReturnType<typeof createTargets>
