import assert from 'node:assert/strict'
import { after, before } from 'node:test'
import { type Address, type PublicClient, toEventSelector } from 'viem'
import { createRpcClients } from '../../src/chain/rpc.ts'
import { ChainScanner, type ChainScannerOptions } from '../../src/chain/scanner.ts'
import type { DatabaseKind } from '../../src/db/client.ts'
import { type Anvil, anvilAccount, blockNumber, startAnvil, walletFor } from './anvil.ts'
import { deployTestToken, erc20Abi, receiptOf, transferToken } from './contracts.ts'
import { openTestDatabase, type TestDatabase } from './db.ts'
import {
  createRecordingConsumer,
  createRecordingTables,
  type RecordingConsumer,
} from './recording-consumer.ts'

// The chain cursor's test bed: per database kind, a real anvil node with a token the payer holds,
// and scanners whose consumer writes what it is handed to tables, so what it ends up holding is
// what payments would have credited.

export const TRANSFER = toEventSelector('Transfer(address,address,uint256)')
export const payer = anvilAccount(0).address
export const treasury = anvilAccount(9).address

export interface ChainScannerFixture {
  readonly database: TestDatabase
  readonly anvil: Anvil
  readonly token: Address
  /** A consumer name not used before on this database. */
  consumerName(): string
  /** A consumer (own cursor) watching token transfers to the treasury, from the next block on. */
  setup(options?: Partial<ChainScannerOptions>): Promise<{
    consumer: RecordingConsumer
    scanner: ChainScanner
    startBlock: bigint
  }>
  newScanner(consumer: RecordingConsumer, options?: Partial<ChainScannerOptions>): ChainScanner
  /** Sends `amount` to the treasury in its own block; returns the block number. */
  pay(amount: bigint): Promise<bigint>
  amounts(consumer: RecordingConsumer): Promise<bigint[]>
  /** The batches cover [first, last] with no gap and no overlap. */
  assertContiguous(consumer: RecordingConsumer, first: bigint, last: bigint): Promise<void>
}

/** Registers, in the describe it is called in, the hooks that set up (and tear down) the test bed. */
export function useChainScannerFixture(kind: DatabaseKind): ChainScannerFixture {
  let database: TestDatabase
  let anvil: Anvil
  let token: Address
  let clients: PublicClient[]
  let seq = 0
  before(async () => {
    ;[database, anvil] = await Promise.all([openTestDatabase(kind), startAnvil({ chainId: 31337 })])
    await createRecordingTables(database)
    const wallet = walletFor(anvil)
    token = await deployTestToken(wallet)
    await receiptOf(
      wallet,
      wallet.writeContract({
        address: token,
        abi: erc20Abi,
        functionName: 'mint',
        args: [payer, 10n ** 15n],
      }),
    )
    clients = createRpcClients([anvil.rpcUrl])
  })
  after(async () => {
    await Promise.all([database?.dispose(), anvil?.stop()])
  })

  const consumerName = () => `c${++seq}`
  const newScanner = (consumer: RecordingConsumer, options: Partial<ChainScannerOptions> = {}) =>
    new ChainScanner({
      chainId: 31337,
      clients,
      confirmations: 3,
      pollIntervalMs: 20,
      maxBlockRange: 100,
      consumer,
      db: database.db,
      ...options,
    })
  return {
    get database() {
      return database
    },
    get anvil() {
      return anvil
    },
    get token() {
      return token
    },
    consumerName,
    newScanner,
    async setup(options = {}) {
      const consumer = createRecordingConsumer(database, consumerName(), {
        logs: [
          {
            address: [token],
            topics: [TRANSFER, null, `0x${treasury.slice(2).toLowerCase().padStart(64, '0')}`],
          },
        ],
      })
      const startBlock = (await blockNumber(anvil)) + 1n
      const scanner = newScanner(consumer, { startBlock, ...options })
      return { consumer, scanner, startBlock }
    },
    async pay(amount) {
      const receipt = await transferToken(walletFor(anvil), token, treasury, amount)
      return receipt.blockNumber
    },
    amounts: async (consumer) => (await consumer.records()).map((r) => r.value),
    async assertContiguous(consumer, first, last) {
      const batches = await consumer.batches()
      let next = first
      for (const b of batches) {
        assert.equal(b.from, next, `batch ${b.from}-${b.to} starts where the previous ended`)
        next = b.to + 1n
      }
      assert.equal(next - 1n, last)
    },
  }
}
