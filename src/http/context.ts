import type { Principal } from '../identity/principal.ts'

export interface AppEnv {
  Variables: {
    requestId: string
    /** The owner whose audit log a refusal of this request belongs to, when not the acting one. */
    auditOwner: string | undefined
    /** The client's address (http/middleware/rate-limit.ts says how it is found behind proxies). */
    clientIp: string
    principal: Principal
    /** The credential as presented, for checking a long-lived stream's principal again later. */
    credential: { authorization: string | undefined; queryToken: string | undefined; orgRef?: string }
    /** A long-lived stream's hold, taken before a WebSocket upgrade. */
    stream: OpenStream | undefined
  }
}

/** A long-lived stream (SSE, WebSocket, a followed log) counted against its account's cap. */
export interface OpenStream {
  /** Aborts when the stream must close; the reason says why. */
  signal: AbortSignal
  release(): void
}
