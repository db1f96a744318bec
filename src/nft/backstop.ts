import { sql } from 'drizzle-orm'
import type { Logger } from 'pino'
import { appendAudit } from '../audit/audit-log.ts'
import type { CollectionConfig } from '../config/nft-schema.ts'
import { type Database, queryRows } from '../db/client.ts'
import type { DeploymentSpec, NftBinding } from '../domain/spec.ts'
import type { Vault } from '../secrets/vault.ts'
import type { NftChains } from './chain.ts'
import { collectionOf } from './ownership.ts'
import { type AppliedChange, applyHolderChange, type ChangeSource } from './transfer.ts'

// The backstops for transfer logs the watcher never saw (an RPC that dropped a log, a cursor moved
// by hand, a collection added after the transfer): read each bound token's holder at the confirmed
// block and apply the same change a log would have. The recheck covers deployments meant to run,
// often; the sweep covers every bound deployment that is not deleted, rarely.

export interface BackstopDeps {
  database: Database
  chains: NftChains
  collections: CollectionConfig[]
  logger?: Logger
  vault: Pick<Vault, 'seal' | 'open'>
}

interface BoundRow {
  id: string
  owner_address: string | null
  desired_state: string
  spec: DeploymentSpec | string
}

export async function checkHolders(
  deps: BackstopDeps,
  scope: 'live' | 'all',
  source: Exclude<ChangeSource, 'transfer'>,
): Promise<AppliedChange[]> {
  const rows = await queryRows<BoundRow>(
    deps.database.db,
    sql`select d.id, a.address as owner_address, d.desired_state, d.spec
          from deployments d join accounts a on a.id = d.owner_id
         where d.spec ? 'nft' and ${scope === 'live' ? sql`d.desired_state = 'running'` : sql`d.desired_state <> 'deleted'`}`,
  )
  const blocks = new Map<number, Promise<bigint>>()
  const applied: AppliedChange[] = []
  for (const row of rows) {
    const spec: DeploymentSpec = typeof row.spec === 'string' ? JSON.parse(row.spec) : row.spec
    const binding = spec.nft as NftBinding
    const collection = collectionOf(deps.collections, binding.chainId, binding.contract)
    if (!collection || !deps.chains.get(binding.chainId) || !row.owner_address) continue
    try {
      if (!blocks.has(binding.chainId))
        blocks.set(binding.chainId, deps.chains.confirmedBlock(binding.chainId))
      const block = await blocks.get(binding.chainId)!
      let to: string | null
      let burned = false
      if (binding.standard === 'erc721') {
        to = await deps.chains.ownerOf(binding, block)
        burned = to === null
        if (to === row.owner_address) continue
      } else {
        if ((await deps.chains.balanceOf(binding, row.owner_address, block)) > 0n) continue
        to = null // ERC-1155 balances do not say who has it now
      }
      // Nothing to stop and nobody to hand it to: already dealt with.
      if ((burned || to === null) && row.desired_state !== 'running') continue
      const change = await deps.database.db.transaction(async (tx) => {
        const applied = await applyHolderChange(
          tx,
          { ...binding, to, burned, source, blockNumber: block },
          { carrySecrets: collection.carrySecrets, carryVolumes: collection.carryVolumes, vault: deps.vault },
        )
        await appendAudit(tx, applied?.audit ?? [])
        return applied
      })
      if (change) applied.push(change)
    } catch (error) {
      // One unreadable token (or chain) must not keep the others from being checked.
      deps.logger?.warn({ err: error, deployment: row.id, source }, 'NFT ownership check failed')
    }
  }
  return applied
}
