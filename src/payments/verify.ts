import { type Hex, type PublicClient, parseAbiItem } from 'viem'
import type { PaymentNetwork, TokenConfig } from '../config/payments-schema.ts'

// Reads a transaction from the chain and says which transfers to the treasury it made, measured
// by what arrived. Every read goes through `agreed`, which asks each configured RPC and answers
// only when they all say the same, so one lying or lagging node cannot get a payment credited.

export const TRANSFER_TOPIC: Hex = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef'

/** Runs a read on every RPC of a network and answers only when they agree. */
export type AgreedRead = <T>(read: (client: PublicClient) => Promise<T>) => Promise<T>

export interface ChainAccess {
  network: PaymentNetwork
  agreed: AgreedRead
  /** The lowest head among the network's RPCs (or its finalized block when confirmations is `finalized`). */
  confirmedHead(): Promise<{ head: bigint; finalized?: bigint }>
}

export interface VerifiedTransfer {
  chainId: number
  txHash: Hex
  /** -1 for a native transfer. */
  logIndex: number
  token: TokenConfig
  payer: string
  amount: bigint
  blockNumber: bigint
  blockHash: Hex
  blockTime: Date
}

export type Verification =
  | { kind: 'not_found' }
  | { kind: 'reverted' }
  | {
      kind: 'mined'
      transfers: VerifiedTransfer[]
      /** Blocks on top of the transaction's block. */
      depth: bigint
      confirmed: boolean
      /** Transfer logs that claimed more than the treasury's balance grew by (a lying token). */
      phantom: VerifiedTransfer[]
    }

const balanceOfAbi = [
  {
    type: 'function',
    name: 'balanceOf',
    stateMutability: 'view',
    inputs: [{ name: 'owner', type: 'address' }],
    outputs: [{ type: 'uint256' }],
  },
] as const

const transferEvent = parseAbiItem('event Transfer(address indexed from, address indexed to, uint256 value)')

const topicAddress = (topic: Hex | undefined) => (topic ? `0x${topic.slice(26)}`.toLowerCase() : '')

export async function verifyTransaction(access: ChainAccess, txHash: Hex): Promise<Verification> {
  const { network, agreed } = access
  const receipt = await agreed((c) => c.getTransactionReceipt({ hash: txHash }).catch(notFoundAsNull))
  if (!receipt) return { kind: 'not_found' }
  if (receipt.status !== 'success') return { kind: 'reverted' }
  const block = await agreed((c) => c.getBlock({ blockNumber: receipt.blockNumber }))
  // A receipt from a block that is no longer canonical is not a payment (yet).
  if (block.hash !== receipt.blockHash) return { kind: 'not_found' }
  const at = {
    blockNumber: receipt.blockNumber,
    blockHash: receipt.blockHash,
    blockTime: new Date(Number(block.timestamp) * 1000),
  }

  const transfers: VerifiedTransfer[] = []
  const native = network.tokens.find((t) => t.address === 'native')
  if (native) {
    const tx = await agreed((c) => c.getTransaction({ hash: txHash }))
    if (tx.to?.toLowerCase() === network.treasury && tx.value > 0n) {
      transfers.push({
        chainId: network.chainId,
        txHash,
        logIndex: -1,
        token: native,
        payer: tx.from.toLowerCase(),
        amount: tx.value,
        ...at,
      })
    }
  }
  for (const log of receipt.logs) {
    const token = network.tokens.find((t) => t.address === log.address.toLowerCase())
    if (!token || log.topics[0] !== TRANSFER_TOPIC || log.topics.length !== 3) continue
    if (topicAddress(log.topics[2]) !== network.treasury) continue
    transfers.push({
      chainId: network.chainId,
      txHash,
      logIndex: log.logIndex,
      token,
      payer: topicAddress(log.topics[1]),
      amount: BigInt(log.data),
      ...at,
    })
  }

  const phantom = await phantomTransfers(access, transfers)
  const { head, finalized } = await access.confirmedHead()
  const depth = head > receipt.blockNumber ? head - receipt.blockNumber : 0n
  const confirmed =
    network.confirmations === 'finalized'
      ? finalized !== undefined && finalized >= receipt.blockNumber
      : head >= receipt.blockNumber && depth >= BigInt(network.confirmations)
  return {
    kind: 'mined',
    transfers: transfers.filter((t) => !phantom.includes(t)),
    phantom,
    depth,
    confirmed,
  }
}

/**
 * A token can emit `Transfer` without moving anything. For each ERC-20 in the transfers, the
 * treasury's balance must have grown across the block by at least what that block's logs say
 * came in less what went out; otherwise every transfer of that token in the block is refused.
 */
async function phantomTransfers(
  access: ChainAccess,
  transfers: VerifiedTransfer[],
): Promise<VerifiedTransfer[]> {
  const { network, agreed } = access
  const phantom: VerifiedTransfer[] = []
  const tokens = new Set(transfers.filter((t) => t.logIndex >= 0).map((t) => t.token.address))
  for (const address of tokens) {
    const first = transfers.find((t) => t.token.address === address)!
    const block = first.blockNumber
    const logsOf = (args: { from: Hex } | { to: Hex }) =>
      agreed((c) =>
        c.getLogs({ address: address as Hex, event: transferEvent, args, fromBlock: block, toBlock: block }),
      )
    const balanceAt = (blockNumber: bigint) =>
      agreed((c) =>
        c.readContract({
          address: address as Hex,
          abi: balanceOfAbi,
          functionName: 'balanceOf',
          args: [network.treasury],
          blockNumber,
        }),
      )
    const [incoming, outgoing, before, after] = await Promise.all([
      logsOf({ to: network.treasury }),
      logsOf({ from: network.treasury }),
      balanceAt(block - 1n),
      balanceAt(block),
    ])
    const sum = (logs: Array<{ args: { value?: bigint } }>) =>
      logs.reduce((total, l) => total + (l.args.value ?? 0n), 0n)
    const claimed = sum(incoming) - sum(outgoing)
    if (after - before < claimed) phantom.push(...transfers.filter((t) => t.token.address === address))
  }
  return phantom
}

function notFoundAsNull(error: unknown): null {
  const name = (error as Error).name
  if (name === 'TransactionReceiptNotFoundError' || name === 'TransactionNotFoundError') return null
  throw error
}
