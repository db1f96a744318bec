import { sql } from 'drizzle-orm'
import type { CollectionConfig } from '../config/nft-schema.ts'
import { type Db, queryRows, type Tx } from '../db/client.ts'
import { forbidden, invalidInput } from '../domain/errors.ts'
import type { NftBinding } from '../domain/spec.ts'
import type { NftChains } from './chain.ts'

// "Is this wallet the token's holder?", answered at a confirmed block and cached briefly in
// nft_ownership. The cache only ever says yes for the holder it verified; the watcher forgets a
// token's row in the transaction that applies a transfer of it.

export interface OwnershipDeps {
  db: Db
  chains: NftChains
  collections: CollectionConfig[]
  cacheSeconds: number
}

export function collectionOf(collections: CollectionConfig[], chainId: number, contract: string) {
  return collections.find((c) => c.chainId === chainId && c.contract === contract.toLowerCase())
}

/** The holder check of create, start, restart and the NFT deploy route; throws 400 or 403. */
export function createOwnership(deps: OwnershipDeps) {
  const { db, chains } = deps

  function requireCollection(binding: NftBinding): CollectionConfig {
    const collection = collectionOf(deps.collections, binding.chainId, binding.contract)
    if (!collection)
      throw invalidInput(`NFT collection ${binding.contract} on chain ${binding.chainId} is not configured`, [
        { path: 'nft.contract', message: 'not a configured collection' },
      ])
    if (collection.standard !== binding.standard)
      throw invalidInput(
        `collection ${binding.contract} is ${collection.standard}, not ${binding.standard}`,
        [{ path: 'nft.standard', message: `must be ${collection.standard}` }],
      )
    return collection
  }

  async function holdsAt(binding: NftBinding, address: string, block: bigint): Promise<boolean> {
    if (binding.standard === 'erc721') return (await chains.ownerOf(binding, block)) === address
    return (await chains.balanceOf(binding, address, block)) > 0n
  }

  /** Whether `address` holds the token at the confirmed block, and that block. */
  async function holds(binding: NftBinding, address: string): Promise<{ holds: boolean; block: bigint }> {
    const block = await chains.confirmedBlock(binding.chainId)
    return { holds: await holdsAt(binding, address, block), block }
  }

  async function assertHolder(binding: NftBinding, wallet: string | null): Promise<CollectionConfig> {
    const collection = requireCollection(binding)
    if (!wallet) throw forbidden('an NFT-bound deployment needs a wallet account (sign in with Ethereum)')
    const address = wallet.toLowerCase()
    const [cached] = await queryRows<{ owner: string }>(
      db,
      sql`select owner from nft_ownership
           where chain_id = ${binding.chainId} and contract = ${binding.contract} and token_id = ${binding.tokenId}
             and owner = ${address} and verified_at > now() - make_interval(secs => ${deps.cacheSeconds})`,
    )
    if (cached) return collection
    const { holds: ok, block } = await holds(binding, address)
    if (!ok) {
      // Held at the head but not yet at the confirmed block: a mint or transfer still settling.
      const head = await chains.headBlock(binding.chainId)
      if (head > block && (await holdsAt(binding, address, head))) {
        throw forbidden(
          `${address} holds token ${binding.tokenId} of ${binding.contract}, but it is not yet confirmed on chain ${binding.chainId} (held at block ${head}, confirmed up to ${block}); try again in a few blocks`,
        )
      }
      throw forbidden(
        `${address} does not hold token ${binding.tokenId} of ${binding.contract} on chain ${binding.chainId} (as of block ${block})`,
      )
    }
    await db.execute(
      sql`insert into nft_ownership (chain_id, contract, token_id, owner, block_number, verified_at)
          values (${binding.chainId}, ${binding.contract}, ${binding.tokenId}, ${address}, ${String(block)}, now())
          on conflict (chain_id, contract, token_id)
            do update set owner = excluded.owner, block_number = excluded.block_number, verified_at = now()`,
    )
    return collection
  }

  return { requireCollection, holds, assertHolder }
}

export type Ownership = ReturnType<typeof createOwnership>

/** Forgets what was verified about a token (its holder changed). */
export async function forgetOwnership(tx: Tx, chainId: number, contract: string, tokenId: string) {
  await tx.execute(
    sql`delete from nft_ownership where chain_id = ${chainId} and contract = ${contract} and token_id = ${tokenId}`,
  )
}
