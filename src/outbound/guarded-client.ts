import { lookup as dnsLookup } from 'node:dns/promises'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { LookupFunction } from 'node:net'
import { isIP } from 'node:net'
import { BerthError, invalidInput } from '../domain/errors.ts'
import { type AllowList, isInternalAddress, parseAllowList, plainAddress } from './address-policy.ts'

// The one door out for requests to URLs a user can influence (token metadata, IPFS gateway paths,
// webhooks and chat messages). For every hop it resolves the name, refuses any address that is not
// public (unless the operator allows it), and connects to exactly the address it checked, so a
// name that resolves differently a moment later (DNS rebinding) cannot steer the connection
// inside. Redirects are followed by hand, at most three, each hop checked again. Size and time are
// capped. A user is told only that the URL could not be fetched: whether an internal host exists,
// answers or refused is kept for the log (the error's cause), never shown. (An answer too large is
// said as such: it can only come from an address that passed the check.)

export interface Resolved {
  address: string
  family: 4 | 6
}

export interface OutboundOptions {
  /** `outbound.allow`: CIDRs and host[:port] reachable even though they are not public. */
  allow: readonly string[]
  /** Name resolution; tests inject one, so no test ever asks a real DNS server. */
  resolve?: (hostname: string) => Promise<Resolved[]>
  timeoutMs: number
  maxBytes: number
  maxRedirects?: number
}

export interface OutboundRequest {
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: string
  /** What is being fetched, for the error a user sees: "token metadata could not be fetched". */
  what: string
  /**
   * Keep only the first maxBytes of a larger answer instead of refusing it (a webhook's receiver
   * is judged by its status; what it says after that is not berth's to read).
   */
  truncate?: boolean
}

export interface OutboundResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  /** The URL that answered, after redirects. */
  url: string
}

export interface OutboundClient {
  /** Sends the request; any answer (2xx or not) resolves, anything refused or failed throws. */
  fetch(url: string, request: OutboundRequest): Promise<OutboundResponse>
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])

/** Why a hop was refused: only ever the cause of the generic error users see, for the log. */
function refusal(message: string): Error {
  const error = new Error(message)
  error.name = 'OutboundRefusal'
  return error
}

const systemResolve = async (hostname: string): Promise<Resolved[]> =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map((r) => ({
    address: r.address,
    family: r.family === 6 ? 6 : 4,
  }))

export function createOutboundClient(options: OutboundOptions): OutboundClient {
  const allow: AllowList = parseAllowList(options.allow)
  const resolve = options.resolve ?? systemResolve
  const maxRedirects = options.maxRedirects ?? 3

  /** The address to connect to for this URL, checked; throws OutboundRefusal when not allowed. */
  async function checkedAddress(url: URL): Promise<Resolved> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw refusal(`scheme ${url.protocol} is not fetched`)
    }
    if (url.username || url.password) throw refusal('URLs with credentials are not fetched')
    const host = plainAddress(url.hostname)
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80))
    const literal = isIP(host)
    const candidates: Resolved[] = literal
      ? [{ address: host, family: literal === 6 ? 6 : 4 }]
      : await resolve(host).catch((cause: unknown) => {
          throw refusal(`${host} does not resolve: ${(cause as Error).message}`)
        })
    if (candidates.length === 0) throw refusal(`${host} does not resolve`)
    // Every answer must pass: a name with one public and one internal address is refused.
    for (const candidate of candidates) {
      if (isInternalAddress(candidate.address) && !allow.allows({ host, port, address: candidate.address })) {
        throw refusal(`${host} resolves to ${candidate.address}, which is not public`)
      }
    }
    return candidates[0]!
  }

  async function hop(url: URL, request: OutboundRequest, deadline: AbortSignal): Promise<OutboundResponse> {
    const target = await checkedAddress(url)
    // Connect to exactly the checked address; the name still goes in Host and in TLS (SNI, cert).
    const pinned: LookupFunction = (_hostname, lookupOptions, callback) => {
      if ((lookupOptions as { all?: boolean }).all) {
        ;(callback as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [target])
      } else {
        callback(null, target.address, target.family)
      }
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest
    return new Promise<OutboundResponse>((resolveResponse, reject) => {
      const req = send(
        url,
        {
          method: request.method ?? 'GET',
          headers: { 'user-agent': 'berth', ...request.headers },
          lookup: pinned,
          agent: false,
          signal: deadline,
        },
        (res) => {
          const tooLarge = () => invalidInput(`${request.what} is larger than ${options.maxBytes} bytes`)
          const declared = Number(res.headers['content-length'] ?? 0)
          if (declared > options.maxBytes && !request.truncate) {
            res.destroy()
            reject(tooLarge())
            return
          }
          const chunks: Buffer[] = []
          let size = 0
          const answer = () =>
            resolveResponse({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
              url: url.href,
            })
          res.on('data', (chunk: Buffer) => {
            size += chunk.length
            if (size > options.maxBytes) {
              if (!request.truncate) {
                res.destroy(tooLarge())
                return
              }
              chunks.push(chunk.subarray(0, Math.max(0, chunk.length - (size - options.maxBytes))))
              answer()
              res.destroy()
              return
            }
            chunks.push(chunk)
          })
          res.once('error', reject)
          res.once('close', () => {
            if (!res.complete) reject(refusal('the answer was cut short'))
          })
          res.once('end', answer)
        },
      )
      req.once('error', reject)
      req.end(request.body)
    })
  }

  return {
    async fetch(rawUrl, request) {
      const deadline = AbortSignal.timeout(options.timeoutMs)
      const failed = (cause: unknown) =>
        new BerthError('provider_unavailable', `${request.what} could not be fetched`, { cause })
      let url: URL
      try {
        url = new URL(rawUrl)
      } catch (cause) {
        throw failed(cause)
      }
      try {
        for (let redirects = 0; ; redirects++) {
          const response = await hop(url, request, deadline)
          const location = response.headers.location
          const follows = (request.method ?? 'GET') === 'GET' && REDIRECTS.has(response.status) && location
          if (!follows) return response
          if (redirects >= maxRedirects) throw refusal(`more than ${maxRedirects} redirects`)
          url = new URL(location, url)
        }
      } catch (cause) {
        if (cause instanceof BerthError) throw cause
        throw failed(cause)
      }
    },
  }
}
