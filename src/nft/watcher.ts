import { sql } from 'drizzle-orm'
import type { Logger } from 'pino'
import { decodeEventLog, type Hex, parseAbi, toEventSelector } from 'viem'
import { type AuditRecord, appendAudit } from '../audit/audit-log.ts'
import { ChainScanner } from '../chain/scanner.ts'
import type { ChainConsumer, ChainLog, Tx } from '../chain/types.ts'
import type { CollectionConfig } from '../config/nft-schema.ts'
import type { Database } from '../db/client.ts'
import { queryRows } from '../db/client.ts'
import type { NftBinding } from '../domain/spec.ts'
import type { Metrics } from '../metrics/registry.ts'
import type { Vault } from '../secrets/vault.ts'
import { type NftChain, type NftChains, ZERO_ADDRESS } from './chain.ts'
import { forgetOwnership } from './ownership.ts'
import { type AppliedChange, applyHolderChange } from './transfer.ts'

// Follows the transfers of the configured collections on one network through the same chain
// scanner as payments (its own cursor row, consumer `nft`). The scanner hands over only blocks at
// the confirmation depth, so a transfer a reorg removes before then is never seen; each batch is
// applied in the transaction that moves the cursor, so a transfer stops its deployment once.

const events = parseAbi([
  'event Transfer(address indexed from, address indexed to, uint256 indexed tokenId)',
  'event TransferSingle(address indexed operator, address indexed from, address indexed to, uint256 id, uint256 value)',
  'event TransferBatch(address indexed operator, address indexed from, address indexed to, uint256[] ids, uint256[] values)',
])
const TRANSFER = toEventSelector(events[0])
const TRANSFER_SINGLE = toEventSelector(events[1])
const TRANSFER_BATCH = toEventSelector(events[2])

const topicAddress = (topic: Hex | undefined) => `0x${(topic ?? '').slice(26)}`.toLowerCase()

export interface NftWatcherDeps {
  database: Database
  chain: NftChain
  chains: NftChains
  collections: CollectionConfig[]
  /** Called after each pass with what it changed (wake the reconciler, live updates, metrics). */
  onApplied(changes: AppliedChange[], reason: 'transfer'): void
  metrics?: Pick<Metrics, 'chainCursorLag'>
  logger?: Logger
  vault: Pick<Vault, 'seal' | 'open'>
}

interface TokenMove {
  log: ChainLog
  collection: CollectionConfig
  tokenId: string
  from: string
  to: string
}

export function createNftWatcher(deps: NftWatcherDeps) {
  const { network } = deps.chain
  const collections = deps.collections.filter((c) => c.chainId === network.chainId)
  // Changes applied since the last completed pass, for wake-ups and metrics after it. Keyed by the
  // log and token, so a batch rolled back and applied again by the next pass is counted once.
  let applied = new Map<string, AppliedChange>()

  /** Every token movement in a log of a watched collection. */
  const movesOf = (log: ChainLog): TokenMove[] => {
    const collection = collections.find((c) => c.contract === log.address.toLowerCase())
    if (!collection) return []
    const topic = log.topics[0]
    if (collection.standard === 'erc721') {
      // ERC-20 shares the Transfer signature but indexes 2 topics, not 3: not an NFT transfer.
      if (topic !== TRANSFER || log.topics.length !== 4) return []
      const tokenId = BigInt(log.topics[3]!).toString()
      return [
        { log, collection, tokenId, from: topicAddress(log.topics[1]), to: topicAddress(log.topics[2]) },
      ]
    }
    if (topic !== TRANSFER_SINGLE && topic !== TRANSFER_BATCH) return []
    try {
      const decoded = decodeEventLog({ abi: events, data: log.data, topics: log.topics as [Hex, ...Hex[]] })
      const from = decoded.args.from.toLowerCase()
      const to = decoded.args.to.toLowerCase()
      const ids =
        decoded.eventName === 'TransferBatch'
          ? decoded.args.ids
          : decoded.eventName === 'TransferSingle'
            ? [decoded.args.id]
            : []
      return ids.map((id) => ({ log, collection, tokenId: id.toString(), from, to }))
    } catch (error) {
      // A malformed log from a watched contract is the contract's problem, never a stuck cursor.
      deps.logger?.warn({ err: error, tx: log.transactionHash }, 'undecodable ERC-1155 transfer log skipped')
      return []
    }
  }

  /** The address a bound token's deployment belongs to, if any. */
  const boundHolder = async (tx: Tx, move: TokenMove) => {
    const [row] = await queryRows<{ address: string | null }>(
      tx,
      sql`select a.address from deployments d join accounts a on a.id = d.owner_id
           where d.spec ? 'nft' and d.desired_state <> 'deleted'
             and (d.spec->'nft'->>'chainId') = ${String(network.chainId)}
             and (d.spec->'nft'->>'contract') = ${move.collection.contract}
             and (d.spec->'nft'->>'tokenId') = ${move.tokenId}`,
    )
    return row?.address ?? undefined
  }

  const consumer: ChainConsumer = {
    name: 'nft',
    filters: () => ({
      logs: [
        {
          address: collections.filter((c) => c.standard === 'erc721').map((c) => c.contract as Hex),
          topics: [TRANSFER],
        },
        {
          address: collections.filter((c) => c.standard === 'erc1155').map((c) => c.contract as Hex),
          topics: [[TRANSFER_SINGLE, TRANSFER_BATCH]],
        },
      ],
      nativeTo: [],
    }),
    async onConfirmed(tx, batch) {
      const audit: AuditRecord[] = []
      for (const log of batch.logs) {
        for (const move of movesOf(log)) {
          if (move.from === ZERO_ADDRESS) continue // a mint takes the token from nobody
          // Bound or not, a verified holder of a token that moved is verified no more.
          await forgetOwnership(tx, network.chainId, move.collection.contract, move.tokenId)
          const holder = await boundHolder(tx, move)
          if (holder === undefined) continue
          // ERC-721: the log names the one holder after it, whoever it came from (a missed earlier
          // transfer does not matter). ERC-1155: only a transfer out of the bound holder's wallet can
          // take the token from them, and only if they keep none of it.
          if (move.collection.standard === 'erc1155') {
            if (holder !== move.from) continue
            // An ERC-1155 holder who keeps some of the token still holds it.
            const binding: NftBinding = {
              chainId: network.chainId,
              contract: move.collection.contract,
              tokenId: move.tokenId,
              standard: 'erc1155',
            }
            if ((await deps.chains.balanceOf(binding, move.from, batch.to)) > 0n) continue
          }
          const burned = move.to === ZERO_ADDRESS
          const change = await applyHolderChange(
            tx,
            {
              chainId: network.chainId,
              contract: move.collection.contract,
              tokenId: move.tokenId,
              to: burned ? null : move.to,
              burned,
              source: 'transfer',
              txHash: log.transactionHash,
              blockNumber: log.blockNumber,
            },
            {
              carrySecrets: move.collection.carrySecrets,
              carryVolumes: move.collection.carryVolumes,
              vault: deps.vault,
            },
          )
          if (!change) continue
          applied.set(`${log.transactionHash}:${log.logIndex}:${move.tokenId}`, change)
          audit.push(...change.audit)
        }
      }
      await appendAudit(tx, audit)
    },
    // Nothing to undo: a stop already applied stays (the holder can start again if the reorg gave
    // the token back, the holder check will say so), and the scanner re-delivers the new blocks.
    onReorg: async () => {},
  }

  const scanner = new ChainScanner({
    chainId: network.chainId,
    network: network.name,
    clients: deps.chain.clients,
    confirmations: network.confirmations,
    pollIntervalMs: network.pollIntervalMs,
    maxBlockRange: network.maxBlockRange,
    startBlock: network.startBlock === undefined ? 'latest' : BigInt(network.startBlock),
    consumer,
    db: deps.database.db,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    ...(deps.logger ? { logger: deps.logger } : {}),
    afterPass: async () => {
      const done = [...applied.values()]
      applied = new Map()
      if (done.length) deps.onApplied(done, 'transfer')
    },
  })

  return {
    scanner,
    tick: () => scanner.tick(),
    start: () => scanner.start(),
    stop: () => scanner.stop(),
  }
}

export type NftWatcher = ReturnType<typeof createNftWatcher>
