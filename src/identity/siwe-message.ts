import { invalidInput } from '../domain/errors.ts'

// EIP-4361 messages parsed exactly by the standard's grammar: the fields in their order, one per
// line, LF line ends, an EIP-55 checksummed address, a statement on one line of the allowed
// characters, RFC 3986 URIs and RFC 3339 times. A lenient parser accepts messages a wallet would
// show differently from what berth reads; anything off the grammar is refused (400) instead.

export interface SiweFields {
  scheme?: string
  domain: string
  address: `0x${string}`
  statement?: string
  uri: string
  version: '1'
  chainId: number
  nonce: string
  issuedAt: Date
  expirationTime?: Date
  notBefore?: Date
  requestId?: string
  resources?: string[]
}

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/
/** RFC 3986 authority: [userinfo "@"] host [":" port]. */
const AUTHORITY =
  /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*@?(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::\d*)?$/
const HEADER = / wants you to sign in with your Ethereum account:$/
/** reserved / unreserved / " ": no line break, no quote, no percent, nothing outside ASCII. */
const STATEMENT = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;= ]*$/
/** An RFC 3986 URI: a scheme, then only characters a URI may hold (percent escapes well formed). */
const URI = /^[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$/
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/
const NONCE = /^[A-Za-z0-9]{8,}$/
const REQUEST_ID = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*$/

const bad = (why: string) =>
  invalidInput(`message is not an EIP-4361 message: ${why}`, [{ path: 'message', message: why }])

/**
 * Parses a Sign-In with Ethereum message. `isChecksummed` says whether an address is in its EIP-55
 * form (it needs keccak, which the caller has).
 */
export function parseSiweMessage(text: string, isChecksummed: (address: string) => boolean): SiweFields {
  const lines = text.split('\n')
  let at = 0
  const next = () => lines[at++]
  const field = (name: string, pattern: RegExp, what: string): string => {
    const line = next()
    if (line === undefined || !line.startsWith(`${name}: `)) throw bad(`expected "${name}: " on line ${at}`)
    const value = line.slice(name.length + 2)
    if (!pattern.test(value)) throw bad(`${name} is not ${what}`)
    return value
  }
  const optional = (name: string) => lines[at]?.startsWith(`${name}: `) === true
  const time = (name: string) => {
    const value = field(name, RFC3339, 'an RFC 3339 date-time')
    const date = new Date(value)
    if (Number.isNaN(date.getTime())) throw bad(`${name} is not an RFC 3339 date-time`)
    return date
  }

  const header = next() ?? ''
  if (!HEADER.test(header))
    throw bad('the first line must end "wants you to sign in with your Ethereum account:"')
  const origin = header.replace(HEADER, '')
  const [scheme, domain] = origin.includes('://') ? origin.split('://', 2) : [undefined, origin]
  if (scheme !== undefined && !SCHEME.test(scheme)) throw bad('the scheme is not an RFC 3986 scheme')
  if (!domain || !AUTHORITY.test(domain)) throw bad('the domain is not an RFC 3986 authority')

  const address = next() ?? ''
  if (!/^0x[0-9a-fA-F]{40}$/.test(address)) throw bad('the address is not 0x and 40 hex digits')
  if (!isChecksummed(address)) throw bad('the address is not EIP-55 checksummed')
  if (next() !== '') throw bad('an empty line must follow the address')
  let statement: string | undefined
  if (lines[at] !== '') {
    statement = next()!
    if (!STATEMENT.test(statement)) throw bad('the statement has characters EIP-4361 does not allow')
  }
  if (next() !== '') throw bad('an empty line must come before "URI: "')

  const uri = field('URI', URI, 'an RFC 3986 URI')
  if (field('Version', /^1$/, '1') !== '1') throw bad('the version must be 1')
  const chainId = Number(field('Chain ID', /^[1-9]\d{0,15}$/, 'a positive integer'))
  if (!Number.isSafeInteger(chainId)) throw bad('Chain ID is too large')
  const nonce = field('Nonce', NONCE, 'at least 8 letters or digits')
  const issuedAt = time('Issued At')
  const expirationTime = optional('Expiration Time') ? time('Expiration Time') : undefined
  const notBefore = optional('Not Before') ? time('Not Before') : undefined
  const requestId = optional('Request ID')
    ? field('Request ID', REQUEST_ID, 'an RFC 3986 pchar string')
    : undefined
  let resources: string[] | undefined
  if (lines[at] === 'Resources:') {
    next()
    resources = []
    while (at < lines.length) {
      const line = next()!
      if (!line.startsWith('- ') || !URI.test(line.slice(2)))
        throw bad(`resource on line ${at} is not "- " and a URI`)
      resources.push(line.slice(2))
    }
  }
  if (at < lines.length) throw bad(`unexpected line ${at + 1}: "${lines[at]!.slice(0, 40)}"`)

  return {
    ...(scheme !== undefined ? { scheme } : {}),
    domain,
    address: address as `0x${string}`,
    ...(statement !== undefined ? { statement } : {}),
    uri,
    version: '1',
    chainId,
    nonce,
    issuedAt,
    ...(expirationTime ? { expirationTime } : {}),
    ...(notBefore ? { notBefore } : {}),
    ...(requestId !== undefined ? { requestId } : {}),
    ...(resources ? { resources } : {}),
  }
}
