import { BlockList, isIP } from 'node:net'

// Which addresses berth may connect to on a user's behalf. Anything that is not a public unicast
// address is refused: loopback, private, link-local (cloud metadata at 169.254.169.254), CGNAT,
// multicast, unspecified, documentation and benchmarking ranges, and the IPv6 forms that carry an
// IPv4 address inside them (IPv4-mapped, NAT64, 6to4, Teredo), which would otherwise reach the
// same internal hosts by another spelling. The operator allows exceptions by CIDR or host[:port].

const refusedV4 = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.88.99.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
]
const refusedV6 = [
  '::/128',
  '::1/128',
  '::ffff:0:0/96',
  '64:ff9b::/96',
  '64:ff9b:1::/48',
  '100::/64',
  '2001::/32',
  '2001:db8::/32',
  '2002::/16',
  'fc00::/7',
  'fe80::/10',
  'fec0::/10',
  'ff00::/8',
]

function blockListOf(cidrs: readonly string[]): BlockList {
  const list = new BlockList()
  for (const cidr of cidrs) {
    const [network, bits] = cidr.split('/')
    const type = isIP(network!) === 6 ? 'ipv6' : 'ipv4'
    list.addSubnet(network!, Number(bits ?? (type === 'ipv6' ? 128 : 32)), type)
  }
  return list
}

// Two lists: node's BlockList matches an IPv4 address against IPv6 subnets as its IPv4-mapped
// form, so a single list holding ::ffff:0:0/96 would refuse every IPv4 address.
const refused = { ipv4: blockListOf(refusedV4), ipv6: blockListOf(refusedV6) }

/** An address without brackets or an IPv6 zone (`fe80::1%eth0`). */
export function plainAddress(address: string): string {
  return address.replace(/^\[|\]$/g, '').replace(/%.*$/, '')
}

/** True for an address that is not public unicast (and so refused unless allowed). */
export function isInternalAddress(address: string): boolean {
  const plain = plainAddress(address)
  const family = isIP(plain)
  if (family === 0) return true
  return family === 6 ? refused.ipv6.check(plain, 'ipv6') : refused.ipv4.check(plain, 'ipv4')
}

export interface AllowList {
  /** Whether the operator allows this address, or this host (name or literal) on this port. */
  allows(target: { host: string; port: number; address: string }): boolean
}

const CIDR = /^[0-9a-fA-F:.]+\/\d{1,3}$/

/**
 * `outbound.allow` entries: CIDRs (`10.1.0.0/16`, `fd00::/8`, `127.0.0.1/32`) or `host[:port]`
 * (`gateway.internal`, `127.0.0.1:8080`, `[::1]:5001`). A host without a port is allowed on every port.
 */
export function parseAllowList(entries: readonly string[]): AllowList {
  const cidrs = entries.filter((e) => CIDR.test(e))
  const hosts = entries
    .filter((e) => !CIDR.test(e))
    .map((entry) => {
      const match = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(entry.trim().toLowerCase())
      if (!match) throw new Error(`not a CIDR or host[:port]: ${entry}`)
      return { host: plainAddress(match[1]!), port: match[2] === undefined ? undefined : Number(match[2]) }
    })
  const allowedNetworks = {
    ipv4: blockListOf(cidrs.filter((c) => isIP(c.split('/')[0]!) === 4)),
    ipv6: blockListOf(cidrs.filter((c) => isIP(c.split('/')[0]!) === 6)),
  }
  return {
    allows({ host, port, address }) {
      const name = plainAddress(host).toLowerCase()
      if (hosts.some((h) => h.host === name && (h.port === undefined || h.port === port))) return true
      const plain = plainAddress(address)
      const family = isIP(plain)
      if (family === 4) return allowedNetworks.ipv4.check(plain, 'ipv4')
      return family === 6 && allowedNetworks.ipv6.check(plain, 'ipv6')
    },
  }
}

/** The entries of `outbound.allow` that do not parse, for the config's validation. */
export function invalidAllowEntries(entries: readonly string[]): string[] {
  return entries.filter((entry) => {
    if (CIDR.test(entry)) {
      const [network, bits] = entry.split('/')
      const family = isIP(network!)
      return family === 0 || Number(bits) > (family === 6 ? 128 : 32)
    }
    return !/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(entry)
  })
}
