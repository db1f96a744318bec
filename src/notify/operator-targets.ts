import { createHash } from 'node:crypto'
import { and, isNull, notInArray, sql } from 'drizzle-orm'
import type { NotificationsConfig } from '../config/notifications-schema.ts'
import type { Database } from '../db/client.ts'
import { notifyTargets } from '../db/schema/index.ts'
import type { Vault } from '../secrets/vault.ts'
import { shownOf, type TargetConfig } from './target-inputs.ts'
import { placeOf } from './target-view.ts'

// The operator's own targets come from the config (`notifications.operator`) and are kept as rows
// with no owner, so their deliveries are retried and logged like anyone's. Each start makes the
// rows what the config says; a row's id is derived from where it sends, so a restart (or another
// replica with the same config) keeps its deliveries attached to it. Returns how many there are.

const SYNC_LOCK = sql`hashtextextended('berth/operator-targets', 0)`

function configsOf(operator: NotificationsConfig['operator']): TargetConfig[] {
  return [
    ...operator.emails.map((to): TargetConfig => ({ kind: 'email', to })),
    ...operator.webhooks.map((w): TargetConfig => ({ kind: 'webhook', url: w.url, secret: w.secret })),
    ...operator.slack.map((url): TargetConfig => ({ kind: 'slack', url })),
    ...operator.discord.map((url): TargetConfig => ({ kind: 'discord', url })),
  ]
}

/** A UUID from where a target sends (its kind and address), stable across restarts. */
function idOf(config: TargetConfig): string {
  const where = config.kind === 'email' ? config.to : 'url' in config ? config.url : config.chatId
  const hex = createHash('sha256').update(`operator/${config.kind}/${where}`).digest('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}

export async function syncOperatorTargets(
  database: Database,
  vault: Pick<Vault, 'seal'>,
  operator: NotificationsConfig['operator'],
): Promise<number> {
  const configs = configsOf(operator)
  await database.db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${SYNC_LOCK})`)
    const ids = configs.map(idOf)
    await tx
      .delete(notifyTargets)
      .where(and(isNull(notifyTargets.ownerId), ids.length ? notInArray(notifyTargets.id, ids) : sql`true`))
    for (const config of configs) {
      const id = idOf(config)
      const sealed = await vault.seal(placeOf({ id, ownerId: null }), JSON.stringify(config), tx)
      const row = {
        id,
        ownerId: null,
        kind: config.kind,
        shown: shownOf(config),
        sealed,
        description: 'notifications.operator',
        // The operator wrote these addresses: nothing to confirm.
        verifiedAt: new Date(),
        enabled: true,
      }
      await tx
        .insert(notifyTargets)
        .values(row)
        .onConflictDoUpdate({
          target: notifyTargets.id,
          set: { sealed, shown: row.shown, enabled: true, disabledReason: null, updatedAt: sql`now()` },
        })
    }
  })
  return configs.length
}
