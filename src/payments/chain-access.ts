import type { PublicClient } from 'viem'
import { createRpcClients, readAgreed } from '../chain/rpc.ts'
import type { PaymentNetwork } from '../config/payments-schema.ts'
import { ascending } from './money.ts'
import type { ChainAccess } from './verify.ts'

/** How payments read one network: every read agreed by all its RPCs; the head is the lowest they report. */
export function createChainAccess(
  network: PaymentNetwork,
  clients?: PublicClient[],
): ChainAccess & { clients: PublicClient[] } {
  const all = clients ?? createRpcClients(network.rpcUrls)
  return {
    network,
    clients: all,
    agreed: (read) => readAgreed(all, read),
    async confirmedHead() {
      const heads = await Promise.all(all.map((c) => c.getBlockNumber({ cacheTime: 0 })))
      const head = heads.sort(ascending)[0]!
      if (network.confirmations !== 'finalized') return { head }
      const finalized = await readAgreed(all, (c) =>
        c.getBlock({ blockTag: 'finalized' }).then((b) => b.number),
      )
      return { head, finalized }
    },
  }
}
