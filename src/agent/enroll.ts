import type { HttpClient } from '../client/http-client.ts'
import { AGENT_KEY_RESOURCE, ENROLL_STATEMENT } from '../domain/node.ts'

// The agent's side of enrollment: the node operator's wallet signs a Sign-In with Ethereum
// message that states the enrollment and names the agent's public key; the server answers with the
// node id and how often to send heartbeats.

export interface EnrollmentAnswer {
  nodeId: string
  name: string
  operator: string
  reenrolled: boolean
  heartbeatSeconds: number
  clockSkewSeconds: number
}

export interface EnrollOptions {
  client: HttpClient
  walletKey: `0x${string}`
  agentPublicKey: string
  name?: string | undefined
  labels?: Record<string, string> | undefined
  joinToken?: string | undefined
  now?: Date
}

/** The message's validity: long enough for a slow wallet, short enough to be useless later. */
const MESSAGE_VALIDITY_MS = 10 * 60 * 1000

export async function enrollNode(options: EnrollOptions): Promise<EnrollmentAnswer> {
  const [{ privateKeyToAccount }, { createSiweMessage }] = await Promise.all([
    import('viem/accounts'),
    import('viem/siwe'),
  ])
  const { client } = options
  const wallet = privateKeyToAccount(options.walletKey)
  const { nonce, domain, uri } = await client.post<{ nonce: string; domain: string; uri: string }>(
    '/v1/auth/nonce',
  )
  const now = options.now ?? new Date()
  const message = createSiweMessage({
    domain,
    uri,
    address: wallet.address,
    statement: ENROLL_STATEMENT,
    version: '1',
    chainId: 1,
    nonce,
    issuedAt: now,
    expirationTime: new Date(now.getTime() + MESSAGE_VALIDITY_MS),
    resources: [`${AGENT_KEY_RESOURCE}${options.agentPublicKey}`],
  })
  const signature = await wallet.signMessage({ message })
  return client.post<EnrollmentAnswer>('/v1/fleet/enroll', {
    message,
    signature,
    ...(options.name ? { name: options.name } : {}),
    ...(options.labels ? { labels: options.labels } : {}),
    ...(options.joinToken ? { joinToken: options.joinToken } : {}),
  })
}
