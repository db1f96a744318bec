import { sql } from 'drizzle-orm'
import type { Address, Hex } from 'viem'
import type { ChainConsumer, LogFilter } from '../../src/chain/types.ts'
import type { Database } from '../../src/db/client.ts'

// A real chain consumer for scanner tests: it writes what it is given to tables, in the
// transaction the scanner hands it, and undoes it on a reorg, as the payments consumer will.
// Reading the tables shows what a consumer would have credited: each log once, or a bug.

export async function createRecordingTables(database: Database): Promise<void> {
  await database.query(
    `CREATE TABLE IF NOT EXISTS test_chain_records (
       consumer text NOT NULL, kind text NOT NULL, block_number bigint NOT NULL, block_hash text NOT NULL,
       tx_hash text NOT NULL, log_index integer, to_address text NOT NULL, value numeric NOT NULL)`,
    [],
  )
  await database.query(
    `CREATE TABLE IF NOT EXISTS test_chain_batches (
       consumer text NOT NULL, from_block bigint NOT NULL, to_block bigint NOT NULL, head_block bigint NOT NULL)`,
    [],
  )
  await database.query(
    'CREATE TABLE IF NOT EXISTS test_chain_reorgs (consumer text NOT NULL, from_block bigint NOT NULL)',
    [],
  )
}

export interface RecordedTransfer {
  kind: 'log' | 'native'
  blockNumber: bigint
  txHash: Hex
  to: Address
  value: bigint
}

export interface RecordingConsumer extends ChainConsumer {
  logFilters: LogFilter[]
  nativeTo: Address[]
  records(): Promise<RecordedTransfer[]>
  batches(): Promise<Array<{ from: bigint; to: bigint; head: bigint }>>
  reorgs(): Promise<bigint[]>
}

/** Watches ERC-20 Transfer logs of `tokens` (any sender, any recipient) and value sent to `nativeTo`. */
export function createRecordingConsumer(
  database: Database,
  name: string,
  watch: { logs?: LogFilter[]; nativeTo?: Address[] },
): RecordingConsumer {
  const logFilters = watch.logs ?? []
  const nativeTo = watch.nativeTo ?? []
  return {
    name,
    logFilters,
    nativeTo,
    filters: () => ({ logs: logFilters, nativeTo }),
    async onConfirmed(tx, batch) {
      await tx.execute(
        sql`insert into test_chain_batches values (${name}, ${batch.from.toString()}, ${batch.to.toString()}, ${batch.headBlock.toString()})`,
      )
      for (const log of batch.logs) {
        const to = `0x${(log.topics[2] ?? '').slice(26)}`
        await tx.execute(
          sql`insert into test_chain_records values (${name}, 'log', ${log.blockNumber.toString()}, ${log.blockHash},
              ${log.transactionHash}, ${log.logIndex}, ${to}, ${BigInt(log.data).toString()})`,
        )
      }
      for (const t of batch.nativeTransfers) {
        await tx.execute(
          sql`insert into test_chain_records values (${name}, 'native', ${t.blockNumber.toString()}, ${t.blockHash},
              ${t.transactionHash}, null, ${t.to.toLowerCase()}, ${t.value.toString()})`,
        )
      }
    },
    async onReorg(tx, fromBlock) {
      await tx.execute(sql`insert into test_chain_reorgs values (${name}, ${fromBlock.toString()})`)
      await tx.execute(
        sql`delete from test_chain_records where consumer = ${name} and block_number >= ${fromBlock.toString()}`,
      )
    },
    async records() {
      const rows = await database.query<{
        kind: 'log' | 'native'
        n: string
        tx: Hex
        to: Address
        v: string
      }>(
        `select kind, block_number::text as n, tx_hash as tx, to_address as to, value::text as v
           from test_chain_records where consumer = $1 order by block_number, log_index`,
        [name],
      )
      return rows.map((r) => ({
        kind: r.kind,
        blockNumber: BigInt(r.n),
        txHash: r.tx,
        to: r.to,
        value: BigInt(r.v),
      }))
    },
    async batches() {
      const rows = await database.query<{ f: string; t: string; h: string }>(
        `select from_block::text as f, to_block::text as t, head_block::text as h
           from test_chain_batches where consumer = $1 order by from_block`,
        [name],
      )
      return rows.map((r) => ({ from: BigInt(r.f), to: BigInt(r.t), head: BigInt(r.h) }))
    },
    async reorgs() {
      const rows = await database.query<{ f: string }>(
        'select from_block::text as f from test_chain_reorgs where consumer = $1',
        [name],
      )
      return rows.map((r) => BigInt(r.f))
    },
  }
}
