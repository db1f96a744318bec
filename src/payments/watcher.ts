import { sql } from 'drizzle-orm'
import type { Logger } from 'pino'
import type { Hex } from 'viem'
import { ChainScanner } from '../chain/scanner.ts'
import type { ChainConsumer } from '../chain/types.ts'
import { type Database, queryRows, type Tx } from '../db/client.ts'
import type { Metrics } from '../metrics/registry.ts'
import type { createChainAccess } from './chain-access.ts'
import { billingEvent, type CreditingDeps, recordTransfer, reversePaymentsFrom } from './crediting.ts'
import { TRANSFER_TOPIC, type VerifiedTransfer, verifyTransaction } from './verify.ts'

// Watches a network's treasury so that nobody needs to submit a hash. The chain scanner hands over
// confirmed blocks; transfers in them from known wallets are recorded as pending payments in the
// scanner's own transaction, and after each pass every pending payment deep enough is verified
// (on all RPCs) and credited. Payments submitted by hash before their depth are credited by the
// same pass. A reorg deeper than the depth reverses what it removed (crediting.ts).

/** Pending payments older than this are no longer looked for (their transaction never confirmed). */
const PENDING_LOOKUP_HOURS = 24

export interface PaymentsWatcherDeps {
  database: Database
  access: ReturnType<typeof createChainAccess>
  crediting: CreditingDeps
  metrics?: Pick<Metrics, 'chainCursorLag'>
  logger?: Logger
}

export function createPaymentsWatcher(deps: PaymentsWatcherDeps) {
  const { database, access } = deps
  const { network } = access
  const now = deps.crediting.now ?? (() => new Date())
  const erc20 = network.tokens.filter((t) => t.address !== 'native')
  const native = network.tokens.find((t) => t.address === 'native')
  const treasuryTopic = `0x${network.treasury.slice(2).padStart(64, '0')}` as Hex

  const consumer: ChainConsumer = {
    name: 'payments',
    filters: () => ({
      logs: erc20.length
        ? [{ address: erc20.map((t) => t.address as Hex), topics: [TRANSFER_TOPIC, null, treasuryTopic] }]
        : [],
      nativeTo: native ? [network.treasury] : [],
    }),
    async onConfirmed(tx, batch) {
      const seen: Array<
        Omit<VerifiedTransfer, 'blockTime' | 'token'> & { tokenAddress: string; symbol: string }
      > = []
      for (const log of batch.logs) {
        const token = erc20.find((t) => t.address === log.address.toLowerCase())
        if (!token || log.topics.length !== 3) continue
        seen.push({
          chainId: network.chainId,
          txHash: log.transactionHash,
          logIndex: log.logIndex,
          tokenAddress: token.address,
          symbol: token.symbol,
          payer: `0x${log.topics[1]!.slice(26)}`.toLowerCase(),
          amount: BigInt(log.data),
          blockNumber: log.blockNumber,
          blockHash: log.blockHash,
        })
      }
      for (const t of batch.nativeTransfers) {
        seen.push({
          chainId: network.chainId,
          txHash: t.transactionHash,
          logIndex: -1,
          tokenAddress: 'native',
          symbol: native!.symbol,
          payer: t.from.toLowerCase(),
          amount: t.value,
          blockNumber: t.blockNumber,
          blockHash: t.blockHash,
        })
      }
      if (seen.length > 0) await recordSeen(tx, seen)
    },
    onReorg: async (tx, fromBlock) => {
      const reversed = await reversePaymentsFrom(tx, network.chainId, fromBlock, now())
      if (reversed > 0)
        deps.logger?.warn({ network: network.name, fromBlock, reversed }, 'reorg reversed credited payments')
    },
  }

  /** Transfers from wallets berth knows become pending payments; others are not berth's business. */
  async function recordSeen(tx: Tx, seen: Array<Record<string, unknown> & { payer: string }>) {
    const payers = [...new Set(seen.map((s) => s.payer))]
    const known = await queryRows<{ id: string; address: string }>(
      tx,
      sql`select id, address from accounts where address in (${sql.join(
        payers.map((p) => sql`${p}`),
        sql`, `,
      )})`,
    )
    const accountOf = new Map(known.map((k) => [k.address, k.id]))
    for (const s of seen) {
      const accountId = accountOf.get(s.payer)
      if (!accountId) continue
      await tx.execute(
        sql`insert into chain_payments (id, chain_id, tx_hash, log_index, token_address, token_symbol, payer, amount,
                                        block_number, block_hash, status, account_id)
            values (gen_random_uuid(), ${s.chainId}, ${s.txHash}, ${s.logIndex}, ${s.tokenAddress}, ${s.symbol}, ${s.payer},
                    ${String(s.amount)}, ${String(s.blockNumber)}, ${s.blockHash}, 'pending', ${accountId})
            on conflict (chain_id, tx_hash, log_index) do update
              set block_number = excluded.block_number, block_hash = excluded.block_hash
              where chain_payments.status = 'pending'`,
      )
    }
  }

  /** Verifies and credits every pending payment of this network that is now deep enough. */
  async function creditPending(): Promise<number> {
    const pending = await queryRows<{ tx_hash: Hex }>(
      database.db,
      sql`select distinct tx_hash from chain_payments
           where chain_id = ${network.chainId} and status = 'pending' and block_number is not null
             and created_at > now() - make_interval(hours => ${PENDING_LOOKUP_HOURS})`,
    )
    let credited = 0
    for (const { tx_hash: txHash } of pending) {
      const verification = await verifyTransaction(access, txHash)
      // Not found: reorged out or not yet seen by every RPC; a later pass looks again.
      if (verification.kind !== 'mined' || !verification.confirmed) continue
      for (const transfer of verification.transfers) {
        const outcome = await recordTransfer(deps.crediting, transfer, { confirmed: true })
        if (outcome.kind === 'credited') credited++
      }
      for (const lie of verification.phantom) await rejectPhantom(lie)
    }
    return credited
  }

  async function rejectPhantom(transfer: VerifiedTransfer) {
    await database.db.transaction(async (tx) => {
      const [row] = await queryRows<{ account_id: string }>(
        tx,
        sql`update chain_payments set status = 'rejected'
             where chain_id = ${transfer.chainId} and tx_hash = ${transfer.txHash} and log_index = ${transfer.logIndex}
               and status = 'pending'
           returning account_id`,
      )
      if (!row) return
      await billingEvent(
        tx,
        row.account_id,
        null,
        'payment_rejected',
        `${transfer.token.symbol} transfer ${transfer.txHash} was logged but the treasury's balance did not grow by it`,
      )
    })
  }

  const scanner = new ChainScanner({
    chainId: network.chainId,
    network: network.name,
    clients: access.clients,
    confirmations: network.confirmations,
    pollIntervalMs: network.pollIntervalMs,
    maxBlockRange: network.maxBlockRange,
    startBlock: network.startBlock === undefined ? 'latest' : BigInt(network.startBlock),
    consumer,
    db: database.db,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    ...(deps.logger ? { logger: deps.logger } : {}),
    afterPass: async () => {
      await creditPending()
    },
  })

  return {
    scanner,
    creditPending,
    tick: () => scanner.tick(),
    start: () => scanner.start(),
    stop: () => scanner.stop(),
  }
}
