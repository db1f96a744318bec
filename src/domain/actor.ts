// Who did something: a signed-in account (its wallet address, or its external subject), one of
// its API keys, the operator's admin token, berth itself, or the chain (a transaction).

export const actorTypes = ['account', 'key', 'operator', 'system', 'chain'] as const
export type ActorType = (typeof actorTypes)[number]

export interface Actor {
  type: ActorType
  /** The wallet address or subject, the key id, `admin`, the part of berth, or the transaction hash. */
  id: string
}

/** A request's client address and request id. */
export interface RequestOrigin {
  ip?: string | null
  requestId?: string | null
}

/** Where a change came from: the actor, and for a request its client address and request id. */
export interface ChangeSource extends RequestOrigin {
  actor: Actor
}

/** The actor as one string (`key:…`, `chain:0x…`), as deployment events show it. */
export function actorLabel(actor: Actor): string {
  return `${actor.type}:${actor.id}`
}

/** A change berth makes on its own; `part` names what made it (reconciler, billing, nft). */
export function systemSource(part: string): ChangeSource {
  return { actor: { type: 'system', id: part } }
}
