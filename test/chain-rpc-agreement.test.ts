import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Hex, PublicClient } from 'viem'
import { createRpcClients, RpcDisagreementError, readAgreed } from '../src/chain/rpc.ts'
import { ChainScanner } from '../src/chain/scanner.ts'
import { type Anvil, mine, publicClientFor, startAnvil, walletFor } from './helpers/anvil.ts'
import { treasury } from './helpers/chain-scanner-fixture.ts'
import { receiptOf } from './helpers/contracts.ts'
import { openTestDatabase } from './helpers/db.ts'
import { createRecordingConsumer, createRecordingTables } from './helpers/recording-consumer.ts'

// Reading from several RPC endpoints of one chain: an answer counts only when they all agree, and
// a scanner applies nothing through endpoints that disagree or serve another chain.

describe('readAgreed', () => {
  let a: Anvil
  let b: Anvil
  before(async () => {
    // The same chain id, different histories: a fork, or an RPC serving another chain.
    ;[a, b] = await Promise.all([startAnvil({ chainId: 31337 }), startAnvil({ chainId: 31337 })])
    const wallet = walletFor(b)
    await receiptOf(wallet, wallet.sendTransaction({ to: treasury, value: 1n }))
    await mine(a, 3)
    await mine(b, 5)
  })
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()])
  })

  it('answers when the RPCs agree and throws RpcDisagreementError when they do not', async () => {
    const clients = createRpcClients([a.rpcUrl, b.rpcUrl])
    assert.equal(await readAgreed(clients, (c) => c.getChainId()), 31337)
    await assert.rejects(
      readAgreed(clients, (c) => c.getBlockNumber({ cacheTime: 0 })),
      (error: unknown) => error instanceof RpcDisagreementError && error.answers.length === 2,
    )
    const hashes = (c: PublicClient) => c.getBlock({ blockNumber: 1n }).then((block) => block.hash as Hex)
    await assert.rejects(readAgreed(clients, hashes), RpcDisagreementError)
    assert.equal(await publicClientFor(a).getChainId(), await publicClientFor(b).getChainId())
  })

  it('refuses to scan through an endpoint of another chain', async () => {
    const database = await openTestDatabase('postgres')
    try {
      const scanner = new ChainScanner({
        chainId: 1,
        clients: createRpcClients([a.rpcUrl]),
        confirmations: 0,
        pollIntervalMs: 20,
        maxBlockRange: 100,
        consumer: createRecordingConsumer(database, 'wrong-chain', {}),
        db: database.db,
      })
      await assert.rejects(scanner.tick(), /serve chain 31337, not 1/)
    } finally {
      await database.dispose()
    }
  })

  it('keeps a scanner from applying anything while its RPCs disagree', async () => {
    const database = await openTestDatabase('postgres')
    try {
      await createRecordingTables(database)
      const consumer = createRecordingConsumer(database, 'disagree', { nativeTo: [treasury] })
      const scanner = new ChainScanner({
        chainId: 31337,
        clients: createRpcClients([a.rpcUrl, b.rpcUrl]),
        confirmations: 0,
        pollIntervalMs: 20,
        maxBlockRange: 100,
        startBlock: 0n,
        consumer,
        db: database.db,
      })
      await assert.rejects(scanner.tick(), RpcDisagreementError)
      assert.deepEqual(await consumer.batches(), [], 'nothing applied')
      assert.deepEqual(await consumer.records(), [])
    } finally {
      await database.dispose()
    }
  })
})
