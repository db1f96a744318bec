import type { Address, Hex } from 'viem'
import { type Anvil, anvilAccount, startAnvil, walletFor } from './anvil.ts'
import { deployTestNft721, deployTestNft1155, nft721Abi, nft1155Abi, receiptOf } from './contracts.ts'

// One anvil chain with an ERC-721 and an ERC-1155 test collection, and the config that makes
// berth follow them. Holders are anvil dev accounts by index (1, 2, 3 are users here).

export interface NftChain {
  anvil: Anvil
  nft721: Address
  nft1155: Address
  /** A `networks` entry for this chain (payments need a token; a static-priced native coin). */
  network(overrides?: { confirmations?: number; pollIntervalMs?: number }): Record<string, unknown>
  addressOf(index: number): Address
  mint721(to: number, id: bigint): Promise<bigint>
  transfer721(from: number, to: number | Address, id: bigint): Promise<bigint>
  burn721(holder: number, id: bigint): Promise<bigint>
  mint1155(to: number, id: bigint, amount: bigint): Promise<bigint>
  transfer1155(from: number, to: number, id: bigint, amount: bigint): Promise<bigint>
  burn1155(holder: number, id: bigint, amount: bigint): Promise<bigint>
  setBaseURI(base: string): Promise<void>
  setURI1155(uri: string): Promise<void>
  stop(): Promise<void>
}

export async function startNftChain(chainId = 31340): Promise<NftChain> {
  const anvil = await startAnvil({ chainId })
  const deployer = walletFor(anvil, 0)
  const nft721 = await deployTestNft721(deployer)
  const nft1155 = await deployTestNft1155(deployer)
  const addressOf = (index: number) => anvilAccount(index).address
  /** Sends from dev account `from` and answers the block the transaction was mined in. */
  const send = async (
    from: number,
    address: Address,
    abi: typeof nft721Abi | typeof nft1155Abi,
    fn: string,
    args: unknown[],
  ) => {
    const wallet = walletFor(anvil, from)
    const receipt = await receiptOf(
      wallet,
      wallet.writeContract({ address, abi, functionName: fn, args } as never) as Promise<Hex>,
    )
    if (receipt.status !== 'success') throw new Error(`${fn} reverted`)
    return receipt.blockNumber
  }
  return {
    anvil,
    nft721,
    nft1155,
    addressOf,
    network: (overrides = {}) => ({
      chainId,
      name: 'anvil-nft',
      rpcUrls: [anvil.rpcUrl],
      confirmations: overrides.confirmations ?? 3,
      pollIntervalMs: overrides.pollIntervalMs ?? 100,
      treasury: addressOf(9),
      tokens: [
        {
          symbol: 'ETH',
          address: 'native',
          decimals: 18,
          price: { sources: [{ type: 'static', usd: '3000' }] },
        },
      ],
    }),
    mint721: (to, id) => send(0, nft721, nft721Abi, 'mint', [addressOf(to), id]),
    transfer721: (from, to, id) =>
      send(from, nft721, nft721Abi, 'transferFrom', [
        addressOf(from),
        typeof to === 'number' ? addressOf(to) : to,
        id,
      ]),
    burn721: (holder, id) => send(holder, nft721, nft721Abi, 'burn', [id]),
    mint1155: (to, id, amount) => send(0, nft1155, nft1155Abi, 'mint', [addressOf(to), id, amount]),
    transfer1155: (from, to, id, amount) =>
      send(from, nft1155, nft1155Abi, 'safeTransferFrom', [addressOf(from), addressOf(to), id, amount, '0x']),
    burn1155: (holder, id, amount) =>
      send(holder, nft1155, nft1155Abi, 'burn', [addressOf(holder), id, amount]),
    async setBaseURI(base) {
      await send(0, nft721, nft721Abi, 'setBaseURI', [base])
    },
    async setURI1155(uri) {
      await send(0, nft1155, nft1155Abi, 'setURI', [uri])
    },
    stop: () => anvil.stop(),
  }
}
