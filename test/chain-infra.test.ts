import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type Address, decodeEventLog, parseEther } from 'viem'
import {
  type Anvil,
  anvilAccount,
  blockNumber,
  mine,
  publicClientFor,
  reorg,
  revert,
  rpc,
  snapshot,
  startAnvil,
  walletFor,
} from './helpers/anvil.ts'
import {
  deployFalseReturningToken,
  deployFeeOnTransferToken,
  deployPhantomTransferToken,
  deployTestNft721,
  deployTestNft1155,
  deployTestPriceFeed,
  deployTestToken,
  erc20Abi,
  nft721Abi,
  nft1155Abi,
  priceFeedAbi,
  receiptOf,
  transferToken,
} from './helpers/contracts.ts'

// The chain test infrastructure itself: anvil nodes side by side, the helpers that move their
// chains, and the test contracts doing what the payment and NFT tests will rely on.

describe('anvil helper', () => {
  let a: Anvil
  let b: Anvil
  before(async () => {
    ;[a, b] = await Promise.all([startAnvil({ chainId: 31337 }), startAnvil({ chainId: 31338 })])
  })
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()])
  })

  it('runs two chains side by side, each with its own chain id and state', async () => {
    assert.notEqual(a.rpcUrl, b.rpcUrl)
    assert.equal(await publicClientFor(a).getChainId(), 31337)
    assert.equal(await publicClientFor(b).getChainId(), 31338)
    const to = anvilAccount(5).address
    const before = await publicClientFor(b).getBalance({ address: to })
    await receiptOf(walletFor(a), walletFor(a).sendTransaction({ to, value: parseEther('1') }))
    assert.equal(await publicClientFor(b).getBalance({ address: to }), before, 'the other chain is untouched')
    assert.equal(await publicClientFor(a).getBalance({ address: to }), before + parseEther('1'))
  })

  it('mines, snapshots and reverts', async () => {
    const start = await blockNumber(a)
    const id = await snapshot(a)
    await mine(a, 100)
    assert.equal(await blockNumber(a), start + 100n)
    await revert(a, id)
    assert.equal(await blockNumber(a), start)
  })

  it('reorgs: the replaced blocks get new hashes and only the replacement transactions', async () => {
    const client = publicClientFor(a)
    const to = anvilAccount(6).address
    const wallet = walletFor(a)
    const dropped = await receiptOf(wallet, wallet.sendTransaction({ to, value: 1000n }))
    await mine(a, 2)
    const head = await blockNumber(a)
    const oldBlock = await client.getBlock({ blockNumber: dropped.blockNumber })
    await reorg(a, 3, [{ tx: { from: anvilAccount(0).address, to, value: '0x7' }, blockOffset: 2 }])
    assert.equal(await blockNumber(a), head, 'same height')
    const newBlock = await client.getBlock({ blockNumber: dropped.blockNumber })
    assert.notEqual(newBlock.hash, oldBlock.hash)
    assert.equal(newBlock.parentHash, oldBlock.parentHash, 'the common ancestor is kept')
    assert.equal(newBlock.transactions.length, 0)
    const last = await client.getBlock({ blockNumber: head, includeTransactions: true })
    assert.equal(last.transactions.length, 1)
    assert.equal(last.transactions[0]!.value, 7n)
    assert.equal(await rpc(a.rpcUrl, 'eth_getTransactionReceipt', [dropped.transactionHash]), null)
  })
})

describe('test contracts', () => {
  let anvil: Anvil
  const payer = anvilAccount(0).address
  const treasury = anvilAccount(9).address
  before(async () => {
    anvil = await startAnvil({ chainId: 31337 })
  })
  after(() => anvil?.stop())

  const balanceOf = (token: Address, owner: Address) =>
    publicClientFor(anvil).readContract({
      address: token,
      abi: erc20Abi,
      functionName: 'balanceOf',
      args: [owner],
    })
  const mintAndSend = async (token: Address, amount: bigint) => {
    const wallet = walletFor(anvil)
    await receiptOf(
      wallet,
      wallet.writeContract({ address: token, abi: erc20Abi, functionName: 'mint', args: [payer, amount] }),
    )
    return transferToken(wallet, token, treasury, amount)
  }
  const transfersIn = (receipt: Awaited<ReturnType<typeof mintAndSend>>, token: Address) =>
    receipt.logs
      .filter((log) => log.address.toLowerCase() === token.toLowerCase())
      .map((log) => decodeEventLog({ abi: erc20Abi, ...log }))
      .filter((event) => event.eventName === 'Transfer')
      .map((event) => event.args as { from: Address; to: Address; value: bigint })

  it('TestToken: 6 decimals, mint and transfer move balances', async () => {
    const token = await deployTestToken(walletFor(anvil))
    const client = publicClientFor(anvil)
    assert.equal(await client.readContract({ address: token, abi: erc20Abi, functionName: 'decimals' }), 6)
    const receipt = await mintAndSend(token, 25_000_000n)
    assert.equal(receipt.status, 'success')
    assert.equal(await balanceOf(token, treasury), 25_000_000n)
    assert.deepEqual(transfersIn(receipt, token), [{ from: payer, to: treasury, value: 25_000_000n }])
  })

  it('FeeOnTransferToken: the recipient gets 99%, and its Transfer log says so', async () => {
    const token = await deployFeeOnTransferToken(walletFor(anvil))
    const receipt = await mintAndSend(token, 10_000_000n)
    assert.equal(await balanceOf(token, treasury), 9_900_000n)
    const toTreasury = transfersIn(receipt, token).filter((t) => t.to === treasury)
    assert.deepEqual(toTreasury, [{ from: payer, to: treasury, value: 9_900_000n }])
  })

  it('FalseReturningToken: transfer returns false, moves nothing and logs nothing', async () => {
    const wallet = walletFor(anvil)
    const token = await deployFalseReturningToken(wallet)
    const client = publicClientFor(anvil)
    await receiptOf(
      wallet,
      wallet.writeContract({ address: token, abi: erc20Abi, functionName: 'mint', args: [payer, 5n] }),
    )
    const { result } = await client.simulateContract({
      account: payer,
      address: token,
      abi: erc20Abi,
      functionName: 'transfer',
      args: [treasury, 5n],
    })
    assert.equal(result, false)
    const receipt = await receiptOf(
      wallet,
      wallet.writeContract({ address: token, abi: erc20Abi, functionName: 'transfer', args: [treasury, 5n] }),
    )
    assert.equal(receipt.status, 'success', 'it does not revert')
    assert.equal(receipt.logs.length, 0)
    assert.equal(await balanceOf(token, treasury), 0n)
    assert.equal(await balanceOf(token, payer), 5n)
  })

  it('PhantomTransferToken: a Transfer log with no balance change', async () => {
    const token = await deployPhantomTransferToken(walletFor(anvil))
    const receipt = await mintAndSend(token, 7_000_000n)
    assert.deepEqual(transfersIn(receipt, token), [{ from: payer, to: treasury, value: 7_000_000n }])
    assert.equal(await balanceOf(token, treasury), 0n)
    assert.equal(await balanceOf(token, payer), 7_000_000n)
  })

  it('TestNft721: mint, transfer, tokenURI from a settable base, burn', async () => {
    const wallet = walletFor(anvil)
    const client = publicClientFor(anvil)
    const nft = await deployTestNft721(wallet)
    const write = (functionName: 'mint' | 'burn' | 'setBaseURI' | 'transferFrom', args: readonly unknown[]) =>
      receiptOf(wallet, wallet.writeContract({ address: nft, abi: nft721Abi, functionName, args } as never))
    await write('mint', [payer, 42n])
    assert.equal(
      await client.readContract({ address: nft, abi: nft721Abi, functionName: 'ownerOf', args: [42n] }),
      payer,
    )
    await write('setBaseURI', ['ipfs://base/'])
    assert.equal(
      await client.readContract({ address: nft, abi: nft721Abi, functionName: 'tokenURI', args: [42n] }),
      'ipfs://base/42',
    )
    await write('transferFrom', [payer, treasury, 42n])
    assert.equal(
      await client.readContract({ address: nft, abi: nft721Abi, functionName: 'ownerOf', args: [42n] }),
      treasury,
    )
    await write('burn', [42n])
    await assert.rejects(
      client.readContract({ address: nft, abi: nft721Abi, functionName: 'ownerOf', args: [42n] }),
    )
  })

  it('TestNft1155: mint, burn and uri', async () => {
    const wallet = walletFor(anvil)
    const client = publicClientFor(anvil)
    const nft = await deployTestNft1155(wallet)
    const balance = () =>
      client.readContract({ address: nft, abi: nft1155Abi, functionName: 'balanceOf', args: [payer, 3n] })
    await receiptOf(
      wallet,
      wallet.writeContract({ address: nft, abi: nft1155Abi, functionName: 'mint', args: [payer, 3n, 10n] }),
    )
    assert.equal(await balance(), 10n)
    await receiptOf(
      wallet,
      wallet.writeContract({ address: nft, abi: nft1155Abi, functionName: 'burn', args: [payer, 3n, 4n] }),
    )
    assert.equal(await balance(), 6n)
    await receiptOf(
      wallet,
      wallet.writeContract({
        address: nft,
        abi: nft1155Abi,
        functionName: 'setURI',
        args: ['https://x/{id}.json'],
      }),
    )
    assert.equal(
      await client.readContract({ address: nft, abi: nft1155Abi, functionName: 'uri', args: [3n] }),
      'https://x/{id}.json',
    )
  })

  it('TestPriceFeed: answers what was set, like an AggregatorV3', async () => {
    const wallet = walletFor(anvil)
    const client = publicClientFor(anvil)
    const feed = await deployTestPriceFeed(wallet, 8)
    assert.equal(await client.readContract({ address: feed, abi: priceFeedAbi, functionName: 'decimals' }), 8)
    await receiptOf(
      wallet,
      wallet.writeContract({
        address: feed,
        abi: priceFeedAbi,
        functionName: 'setAnswer',
        args: [312_345_000_000n, 1_700_000_000n],
      }),
    )
    const [roundId, answer, startedAt, updatedAt, answeredInRound] = await client.readContract({
      address: feed,
      abi: priceFeedAbi,
      functionName: 'latestRoundData',
    })
    assert.deepEqual(
      [roundId, answer, startedAt, updatedAt, answeredInRound],
      [1n, 312_345_000_000n, 1_700_000_000n, 1_700_000_000n, 1n],
    )
  })
})
