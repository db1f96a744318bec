import { sql } from 'drizzle-orm'
import type { AuditRecord } from '../audit/audit-log.ts'
import { queryRows, type Tx } from '../db/client.ts'
import { type ChangeSource as AuditSource, actorLabel } from '../domain/actor.ts'
import { mapWorkloads } from '../domain/services.ts'
import type { DeploymentSpec } from '../domain/spec.ts'
import { appendOutbox } from '../events/outbox.ts'
import { findOrCreateAccountByAddress } from '../identity/accounts.ts'
import { resealSpecSecrets } from '../secrets/spec-secrets.ts'
import type { Vault } from '../secrets/vault.ts'
import { forgetOwnership } from './ownership.ts'

// What happens to a bound deployment when its token changes hands, in the caller's transaction
// (the watcher's, which also moves its cursor; or a backstop's): the deployment is stopped with
// reason nft_transferred, the old holder gets an event and a notification they can still read,
// the record moves to the new holder (created by address if new to berth) with the old holder's
// secret env values dropped, and the cached ownership of the token is forgotten. What ran for the
// old holder is then removed by the reconciler (see `handover` on the row): the new holder's start
// creates new instances, on its own network, with its env and (unless carried) empty volumes.
//
// A burn (transfer to the zero address), or a holder the backstop cannot name (ERC-1155, where
// balances do not say who has the token now), stops the deployment and leaves it with the old
// holder: nobody usable holds the token, and the old holder can still read and delete it, but a
// start fails the holder check.

export type ChangeSource = 'transfer' | 'recheck' | 'sweep'

export interface HolderChange {
  chainId: number
  contract: string
  tokenId: string
  /** The new holder (lower-case), null when unknown; ignored for a burn. */
  to: string | null
  burned: boolean
  source: ChangeSource
  txHash?: string
  blockNumber?: bigint
}

export interface AppliedChange {
  deploymentId: string
  fromOwnerId: string
  toOwnerId: string
  /** Whether this change stopped a deployment meant to run. */
  stopped: boolean
  burned: boolean
  /**
   * The entries for both holders' audit logs. The caller appends them (appendAudit) as the last
   * statement of its transaction, after every change of its batch, so that owners' audit heads
   * are never held while more deployment rows are locked.
   */
  audit: AuditRecord[]
}

interface BoundRow {
  id: string
  owner_id: string
  owner_address: string | null
  name: string
  desired_state: string
  spec: DeploymentSpec | string
}

export interface HandoverOptions {
  carrySecrets: boolean
  carryVolumes: boolean
  /** Seals carried secret env values again for the next holder. */
  vault: Pick<Vault, 'seal' | 'open'>
}

export async function applyHolderChange(
  tx: Tx,
  change: HolderChange,
  options: HandoverOptions,
): Promise<AppliedChange | null> {
  const { chainId, contract, tokenId } = change
  await forgetOwnership(tx, chainId, contract, tokenId)
  const [row] = await queryRows<BoundRow>(
    tx,
    sql`select d.id, d.owner_id, a.address as owner_address, d.name, d.desired_state, d.spec
          from deployments d join accounts a on a.id = d.owner_id
         where d.spec ? 'nft' and d.desired_state <> 'deleted'
           and (d.spec->'nft'->>'chainId') = ${String(chainId)}
           and (d.spec->'nft'->>'contract') = ${contract}
           and (d.spec->'nft'->>'tokenId') = ${tokenId}
         for update of d`,
  )
  if (!row) return null
  const from = row.owner_address
  const moves = !change.burned && change.to !== null
  // A transfer back to the holder berth already has (or a recheck that agrees) changes nothing.
  if (moves && change.to === from) return null

  const spec: DeploymentSpec = typeof row.spec === 'string' ? JSON.parse(row.spec) : row.spec
  let toOwnerId = row.owner_id
  let name = row.name
  let nextSpec: DeploymentSpec = { ...spec }
  let dropped: string[] = []
  if (moves) {
    toOwnerId = (await findOrCreateAccountByAddress(tx, change.to!)).id
    const droppedSet = new Set<string>()
    nextSpec = mapWorkloads(spec, (holder) => {
      const env = { ...(holder.env ?? {}) }
      if (!options.carrySecrets) {
        for (const k of (holder.secretEnv ?? []).filter((k) => k in env)) {
          droppedSet.add(k)
          delete env[k]
        }
      }
      env.OWNER_ADDRESS = change.to!
      return { ...holder, env }
    })
    dropped = [...droppedSet]
    // Names are unique per owner: keep it unless the new holder already uses it.
    const [clash] = await queryRows<{ id: string }>(
      tx,
      sql`select id from deployments where owner_id = ${toOwnerId} and name = ${name} and status <> 'deleted'
            and id <> ${row.id}`,
    )
    if (clash) {
      name = `${name.slice(0, 54)}-${row.id.slice(0, 8)}`
      nextSpec.name = name
    }
    // Sealed values are bound to their owner: carried over, they are sealed again for the next one.
    if (options.carrySecrets) {
      Object.assign(
        nextSpec,
        await resealSpecSecrets(
          options.vault,
          { ownerId: row.owner_id, deploymentId: row.id },
          { ownerId: toOwnerId, deploymentId: row.id },
          nextSpec,
          tx,
        ),
      )
    }
  }
  const stopping = row.desired_state === 'running'
  const what = change.burned ? 'burned' : moves ? `transferred to ${change.to}` : 'no longer held by you'
  const message =
    `NFT ${tokenId} of ${contract} on chain ${chainId} was ${what}` +
    (change.source === 'transfer' ? '' : ` (found by the ownership ${change.source})`) +
    (stopping ? '; the deployment is stopped' : '')
  const data = {
    from,
    to: change.burned ? null : change.to,
    burned: change.burned,
    source: change.source,
    ...(change.txHash ? { txHash: change.txHash } : {}),
    ...(change.blockNumber !== undefined ? { blockNumber: String(change.blockNumber) } : {}),
    ...(dropped.length ? { secretEnvDropped: dropped } : {}),
  }
  // The chain did it (the transfer's transaction); a recheck or sweep that found it is berth's doing.
  const by: AuditSource = change.txHash
    ? { actor: { type: 'chain', id: change.txHash } }
    : { actor: { type: 'system', id: `nft-${change.source}` } }
  const events = [
    { type: change.burned ? 'nft_burned' : 'nft_transferred', message, data },
    ...(stopping
      ? [
          {
            type: 'desired_state_changed',
            message: 'stop requested (nft_transferred)',
            data: { desired: 'stopped' },
          },
        ]
      : []),
  ]
  // A new holder gets a fresh run: the previous holder's instances are removed before anything
  // starts again, the events so far are no longer shown (only this transfer's on), the volumes
  // start empty under a new generation unless the collection carries them over, and nothing of
  // the previous holder's run counts against the new one (its restart budget, its last error).
  const handover = moves
    ? sql`handover = ${options.carryVolumes ? 'carry' : 'fresh'}, handover_seq = event_seq,
          volume_generation = volume_generation + ${options.carryVolumes ? 0 : 1},
          restart_count = 0, restart_window_started_at = null, error = null,`
    : sql``
  // The row change and its events in one statement, numbered from event_seq like every other write.
  await tx.execute(sql`
    with u as (
      update deployments
         set desired_state = case when desired_state = 'running' then 'stopped' else desired_state end,
             stop_reason = case when desired_state = 'running' then 'nft_transferred' else stop_reason end,
             ${handover}
             owner_id = ${toOwnerId}, name = ${name}, spec = ${JSON.stringify(nextSpec)}::jsonb,
             attempts = 0, next_reconcile_at = now(), event_seq = event_seq + ${events.length}, updated_at = now()
       where id = ${row.id}
      returning id, event_seq)
    insert into deployment_events (deployment_id, seq, type, message, data, actor)
    select u.id, u.event_seq - ${events.length} + ev.ord, ev.v->>'type', ev.v->>'message', ev.v->'data', ${actorLabel(by.actor)}
      from u cross join jsonb_array_elements(${JSON.stringify(events)}::jsonb) with ordinality as ev(v, ord)`)
  // Both holders are told: the one who lost the deployment (whose in-app list keeps it, though
  // the deployment's own events are no longer theirs to read) and the one who got it.
  const told = { deploymentId: row.id, name, chainId, contract, tokenId, message, stopped: stopping, ...data }
  await appendOutbox(tx, [
    {
      ownerId: row.owner_id,
      type: 'nft.transferred',
      deploymentId: row.id,
      payload: { ...told, direction: 'out' },
    },
    ...(toOwnerId !== row.owner_id
      ? [
          {
            ownerId: toOwnerId,
            type: 'nft.transferred' as const,
            deploymentId: row.id,
            payload: { ...told, direction: 'in' },
          },
        ]
      : []),
  ])
  // Both holders' logs say it: the one who lost the deployment and the one who got it.
  const detail = {
    name,
    chainId,
    contract,
    tokenId,
    from,
    to: change.burned ? null : change.to,
    stopped: stopping,
  }
  const action = change.burned
    ? 'deployment.nft_burned'
    : moves
      ? 'deployment.handover'
      : 'deployment.nft_lost'
  const audit = [...new Set([row.owner_id, toOwnerId])].map((ownerId) => ({
    ownerId,
    source: by,
    action,
    target: `deployment:${row.id}`,
    detail,
  }))
  return {
    deploymentId: row.id,
    fromOwnerId: row.owner_id,
    toOwnerId,
    stopped: stopping,
    burned: change.burned,
    audit,
  }
}
