import {
  BaseError,
  ContractFunctionRevertedError,
  ContractFunctionZeroDataError,
  type PublicClient,
  parseAbi,
} from 'viem'
import { createRpcClients, readAgreed } from '../chain/rpc.ts'
import type { NetworkConfig } from '../config/payments-schema.ts'
import { BerthError } from '../domain/errors.ts'
import type { NftBinding } from '../domain/spec.ts'
import { ascending } from '../payments/money.ts'

// Token reads for NFT bindings, always at a confirmed block (head − confirmations, or the
// `finalized` tag) and agreed by every RPC of the network: a holder that a reorg could still undo
// is not a holder yet. RPC failures become `provider_unavailable` (503), never a 500.

export const nftAbi = parseAbi([
  'function ownerOf(uint256 id) view returns (address)',
  'function tokenURI(uint256 id) view returns (string)',
  'function balanceOf(address owner, uint256 id) view returns (uint256)',
  'function uri(uint256 id) view returns (string)',
])

export const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000'

export interface NftChain {
  network: NetworkConfig
  clients: PublicClient[]
}

export interface NftChains {
  get(chainId: number): NftChain | undefined
  confirmedBlock(chainId: number): Promise<bigint>
  /** The newest block every RPC has (not yet confirmed). */
  headBlock(chainId: number): Promise<bigint>
  /** ERC-721: the holder at `block` (lower-case), or null when the token does not exist (burned, never minted). */
  ownerOf(binding: NftBinding, block: bigint): Promise<string | null>
  /** ERC-1155: how many of the token `owner` holds at `block`. */
  balanceOf(binding: NftBinding, owner: string, block: bigint): Promise<bigint>
  /** tokenURI (ERC-721) or uri (ERC-1155) at `block`. */
  tokenUri(binding: NftBinding, block: bigint): Promise<string>
}

const unavailable = (chainId: number, cause: unknown) =>
  new BerthError('provider_unavailable', `chain ${chainId} could not be read; try again`, { cause })

/**
 * A contract call the token contract refused (e.g. ownerOf of a burned token), or a call to an
 * address with no code yet at that block (a collection deployed after it): as opposed to an RPC
 * failure, either means the token does not exist there.
 */
export function isRevert(error: unknown): boolean {
  return (
    error instanceof BaseError &&
    Boolean(
      error.walk(
        (e) => e instanceof ContractFunctionRevertedError || e instanceof ContractFunctionZeroDataError,
      ),
    )
  )
}

export function createNftChains(
  networks: NetworkConfig[],
  clientsFor?: (n: NetworkConfig) => PublicClient[],
) {
  const chains = new Map<number, NftChain>(
    networks.map((n) => [n.chainId, { network: n, clients: clientsFor?.(n) ?? createRpcClients(n.rpcUrls) }]),
  )
  const chainOf = (chainId: number) => {
    const chain = chains.get(chainId)
    if (!chain) throw new BerthError('invalid_input', `chain ${chainId} is not configured`)
    return chain
  }
  const read = async <T>(chainId: number, fn: (c: PublicClient) => Promise<T>): Promise<T> => {
    const { clients } = chainOf(chainId)
    try {
      return await readAgreed(clients, fn)
    } catch (error) {
      if (isRevert(error)) throw error
      // Disagreeing endpoints included: their URLs (which may carry API keys) stay out of answers.
      throw unavailable(chainId, error)
    }
  }
  const call = <T>(binding: NftBinding, block: bigint, functionName: string, args: unknown[]) =>
    read(
      binding.chainId,
      (c) =>
        c.readContract({
          address: binding.contract,
          abi: nftAbi,
          functionName,
          args,
          blockNumber: block,
        } as never) as Promise<T>,
    )

  const result: NftChains = {
    get: (chainId) => chains.get(chainId),
    async confirmedBlock(chainId) {
      const { network, clients } = chainOf(chainId)
      try {
        if (network.confirmations === 'finalized') {
          const blocks = await Promise.all(clients.map((c) => c.getBlock({ blockTag: 'finalized' })))
          return blocks.map((b) => b.number).sort(ascending)[0]!
        }
        const heads = await Promise.all(clients.map((c) => c.getBlockNumber({ cacheTime: 0 })))
        const head = heads.sort(ascending)[0]!
        const confirmed = head - BigInt(network.confirmations)
        return confirmed < 0n ? 0n : confirmed
      } catch (error) {
        throw unavailable(chainId, error)
      }
    },
    async headBlock(chainId) {
      const { clients } = chainOf(chainId)
      try {
        const heads = await Promise.all(clients.map((c) => c.getBlockNumber({ cacheTime: 0 })))
        return heads.sort(ascending)[0]!
      } catch (error) {
        throw unavailable(chainId, error)
      }
    },
    async ownerOf(binding, block) {
      try {
        const owner = await call<string>(binding, block, 'ownerOf', [BigInt(binding.tokenId)])
        return owner.toLowerCase()
      } catch (error) {
        if (isRevert(error)) return null
        throw error
      }
    },
    async balanceOf(binding, owner, block) {
      try {
        return await call<bigint>(binding, block, 'balanceOf', [owner, BigInt(binding.tokenId)])
      } catch (error) {
        // A contract that is not an ERC-1155 (or not deployed yet at that block) holds nothing for anyone.
        if (isRevert(error)) return 0n
        throw error
      }
    },
    async tokenUri(binding, block) {
      const fn = binding.standard === 'erc721' ? 'tokenURI' : 'uri'
      try {
        return await call<string>(binding, block, fn, [BigInt(binding.tokenId)])
      } catch (error) {
        if (isRevert(error))
          throw new BerthError('invalid_input', `the token contract refused ${fn}(${binding.tokenId})`)
        throw error
      }
    },
  }
  return result
}
