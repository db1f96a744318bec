import { randomUUID } from 'node:crypto'
import type { Hex } from 'viem'
import { appendAudit } from '../audit/audit-log.ts'
import type { Db } from '../db/client.ts'
import { numberedSql, queryRows } from '../db/client.ts'
import type { RequestOrigin } from '../domain/actor.ts'
import { conflict, forbidden, unauthorized } from '../domain/errors.ts'
import { AGENT_KEY_RESOURCE, ENROLL_STATEMENT } from '../domain/node.ts'
import { findOrCreateAccountByAddress } from '../identity/accounts.ts'
import type { Siwe } from '../identity/siwe.ts'
import type { SiweFields } from '../identity/siwe-message.ts'
import { PUBLIC_KEY_PATTERN } from './agent-key.ts'
import { useJoinToken } from './join-tokens.ts'

// Enrollment: the node operator's wallet signs a Sign-In with Ethereum message that names this
// server, a fresh nonce, and the agent's Ed25519 public key (as its one resource). berth then
// knows the key belongs to a machine that wallet runs. The key is the node's identity: the same
// data dir enrolling again gets the same node back.

export interface EnrollInput {
  message: string
  signature: Hex
  name?: string | undefined
  labels?: Record<string, string> | undefined
  joinToken?: string | undefined
}

export interface Enrolled {
  nodeId: string
  name: string
  operator: string
  /** True when this key was already enrolled: the node keeps its id, sessions and earnings. */
  reenrolled: boolean
}

export interface EnrollmentOptions {
  db: Db
  siwe: Pick<Siwe, 'verifySigned'>
  open: boolean
  now: () => Date
}

export function createEnrollment(options: EnrollmentOptions) {
  const { siwe, now } = options
  return async function enroll(input: EnrollInput, via: RequestOrigin): Promise<Enrolled> {
    return siwe.verifySigned(input.message, input.signature, async (tx, fields) => {
      const publicKey = agentKeyOf(fields)
      const at = now()
      const account = await findOrCreateAccountByAddress(tx, fields.address)
      const [existing] = await queryRows<{
        id: string
        operator_id: string
        name: string
        removed_at: Date | null
      }>(
        tx,
        numberedSql(
          'select id, operator_id, name, removed_at from fleet_nodes where public_key = $1 for update',
          [publicKey],
        ),
      )
      if (existing && existing.operator_id !== account.id) {
        throw conflict('this agent key is enrolled by another wallet: use a fresh data dir')
      }
      // A node still in the fleet may enroll again without a token; a new or removed one needs one.
      const member = existing && !existing.removed_at
      let joinTokenId: string | undefined
      if (!options.open && !member) {
        if (!input.joinToken)
          throw forbidden('this fleet is closed: enrolling needs a join token from the operator')
        joinTokenId = await useJoinToken(tx, input.joinToken, at)
      }
      const nodeId = existing?.id ?? randomUUID()
      const name = input.name ?? existing?.name ?? `node-${nodeId.slice(0, 8)}`
      if (existing) {
        await tx.execute(
          numberedSql(
            `update fleet_nodes set name = $2, labels = coalesce($3::jsonb, labels), removed_at = null where id = $1`,
            [nodeId, name, input.labels ? JSON.stringify(input.labels) : null],
          ),
        )
      } else {
        // Two enrollments of one new key at once: the lock above had no row to hold, so the key's
        // unique index decides, and the one that lost is told to try again.
        const inserted = await queryRows<{ id: string }>(
          tx,
          numberedSql(
            `insert into fleet_nodes (id, operator_id, name, public_key, labels, last_seen_at, enrolled_at)
             values ($1, $2, $3, $4, $5::jsonb, $6, $6) on conflict (public_key) do nothing returning id`,
            [nodeId, account.id, name, publicKey, JSON.stringify(input.labels ?? {}), at],
          ),
        )
        if (inserted.length === 0)
          throw conflict('this agent key is being enrolled by another request: try again')
      }
      await appendAudit(tx, [
        {
          ownerId: account.id,
          source: { actor: { type: 'account', id: account.address! }, ...via },
          action: existing ? 'node.reenroll' : 'node.enroll',
          target: `node:${nodeId}`,
          detail: { name, ...(joinTokenId ? { joinTokenId } : {}) },
        },
      ])
      return { nodeId, name, operator: account.address!, reenrolled: Boolean(existing) }
    })
  }
}

/** The agent key an enrollment message vouches for; a sign-in message is not an enrollment. */
function agentKeyOf(fields: SiweFields): string {
  if (fields.statement !== ENROLL_STATEMENT) {
    throw unauthorized(`an enrollment message must state "${ENROLL_STATEMENT}"`)
  }
  const resources = fields.resources ?? []
  const key = resources.length === 1 ? resources[0]!.slice(AGENT_KEY_RESOURCE.length) : ''
  if (!resources[0]?.startsWith(AGENT_KEY_RESOURCE) || !PUBLIC_KEY_PATTERN.test(key)) {
    throw unauthorized(
      `an enrollment message names exactly one resource: ${AGENT_KEY_RESOURCE}<base64url key>`,
    )
  }
  return key
}
