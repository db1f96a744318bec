import type { notifyTargets } from '../db/schema/index.ts'
import { type SealedPlace, SYSTEM_OWNER } from '../secrets/vault.ts'

// A webhook or channel as its row holds it and as its owner is shown it (never its credentials),
// and where its sealed config lives in the vault.

export type TargetRow = typeof notifyTargets.$inferSelect

export type Family = 'webhook' | 'channel'

export interface TargetView {
  id: string
  kind: TargetRow['kind']
  /** The webhook's URL, a channel's address: never a token. */
  shown: string
  description: string
  eventTypes: string[]
  enabled: boolean
  disabledReason: string | null
  /** Email channels: whether the address was confirmed (nothing is sent before). */
  verified: boolean
  previousSecretValidUntil: string | null
  createdAt: string
  updatedAt: string
}

export const viewOf = (row: TargetRow): TargetView => ({
  id: row.id,
  kind: row.kind,
  shown: row.shown,
  description: row.description,
  eventTypes: row.eventTypes,
  enabled: row.enabled,
  disabledReason: row.disabledReason,
  verified: row.kind !== 'email' || row.verifiedAt !== null,
  previousSecretValidUntil:
    row.previousSecretUntil && row.previousSecretUntil > new Date()
      ? row.previousSecretUntil.toISOString()
      : null,
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
})

export const placeOf = (row: Pick<TargetRow, 'id' | 'ownerId'>): SealedPlace => ({
  ownerId: row.ownerId ?? SYSTEM_OWNER,
  row: `notify-target:${row.id}`,
  field: 'config',
})
