// The cluster peer's side of its IPFS node: the cluster's pinset (persisted, only ever grown), the
// node's RPC API as a client, and the reconciliation that makes the node hold every CID of the
// pinset, each pin's status here being what the other peers are told.
import { lookup } from 'node:dns/promises'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { CID } from 'multiformats/cid'
import { HttpError, log } from './http.mjs'

/** Pins this peer asks its node for at once; the rest wait for the next round. */
const MAX_PINNING = 4
/** A failed pin is retried after this long, doubling per failure up to a minute. */
const RETRY_BASE_MS = 1_000

/** `/ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>` as the host and port to reach over HTTP or TCP. */
export function hostPort(address, what) {
  const match = /^\/(ip4|ip6|dns|dns4|dns6)\/([^/]+)\/tcp\/(\d+)$/.exec(address ?? '')
  if (!match) throw new Error(`${what} must be /ip4|dns4/<host>/tcp/<port>, not ${address}`)
  return { host: match[2], port: Number(match[3]), ip6: match[1] === 'ip6' }
}

/** The CID as one comparable string: the node lists pins as CIDv1 whatever version was asked. */
const sameCid = (text) => CID.parse(text).toV1().toString()

export function parseCid(text) {
  try {
    return CID.parse(text).toString()
  } catch {
    throw new HttpError(400, `invalid CID: ${text}`)
  }
}

/** The Kubo RPC API of this peer's node, at `address` (a multiaddr, as ipfs-cluster takes it). */
export function nodeClient(address, signal) {
  const { host, port, ip6 } = hostPort(address, 'CLUSTER_IPFSHTTP_NODEMULTIADDRESS')
  const base = `http://${ip6 ? `[${host}]` : host}:${port}/api/v0/`

  async function call(command, args = [], { timeoutMs = 10_000, body, headers } = {}) {
    const url = new URL(command, base)
    for (const arg of args) url.searchParams.append('arg', arg)
    const res = await fetch(url, {
      method: 'POST',
      body,
      headers,
      ...(body ? { duplex: 'half' } : {}),
      signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
    })
    const text = await res.text()
    let answer
    try {
      answer = JSON.parse(text)
    } catch {
      answer = { Message: text.slice(0, 500) }
    }
    // The node's status is kept (507 on a full disk above all), its message too.
    if (!res.ok) throw new HttpError(res.status, `the IPFS node answered ${res.status}: ${answer.Message}`)
    return answer
  }

  return {
    call,
    /**
     * The node's peer id and the addresses other nodes can dial: its own, less loopback, with the
     * one its host name resolves to here first (the address on the network the cluster shares).
     * Only /ip4 addresses: a /dns4 one would send the node's libp2p to public DNS resolvers.
     */
    async id() {
      const { ID, Addresses } = await call('id')
      const own = (Addresses ?? []).filter((a) => a.startsWith('/ip4/') && !a.startsWith('/ip4/127.'))
      const swarmPort = /\/tcp\/(\d+)/.exec(own[0] ?? '')?.[1] ?? '4001'
      const { address } = await lookup(host, { family: 4 })
      const addresses = [...new Set([`/ip4/${address}/tcp/${swarmPort}/p2p/${ID}`, ...own])]
      return { id: ID, addresses }
    },
  }
}

/**
 * The pinset in `dir`/pinset.json and the reconciliation of the node with it. `peersIpfs()` gives
 * the other peers' nodes ({id, addresses}) to connect to; `onChange()` is told of a status change.
 */
export async function createPinset({ dir, node, signal, peersIpfs, onChange }) {
  const file = `${dir}/pinset.json`
  /** cid -> {name, timestamp}: the cluster's pinset as this peer knows it. */
  const pins = new Map()
  try {
    for (const pin of JSON.parse(await readFile(file, 'utf8')).pins) pins.set(pin.cid, pin)
  } catch (error) {
    if (error.code !== 'ENOENT') throw new Error(`reading ${file}: ${error.message}`)
  }
  /** cid -> {status, error?, timestamp, attempts, retryAt}: this peer's node for each pin. */
  const statuses = new Map()
  const pinning = new Set()
  let ipfs = { id: '', addresses: [], error: 'not reached yet' }
  let nodeError // the last failure to reach the node, logged once

  // Written to a new file renamed over the old: a stop midway leaves one or the other, whole.
  let saving = Promise.resolve()
  const save = () => {
    const text = JSON.stringify({ pins: [...pins.values()] })
    saving = saving
      .then(() => writeFile(`${file}.tmp`, text))
      .then(() => rename(`${file}.tmp`, file))
      .catch((error) => log(`saving the pinset failed: ${error.message}`))
    return saving
  }

  function setStatus(cid, status, error) {
    const previous = statuses.get(cid)
    const attempts = status === 'pin_error' ? (previous?.attempts ?? 0) + 1 : 0
    const retryAt = Date.now() + Math.min(60_000, RETRY_BASE_MS * 2 ** attempts)
    statuses.set(cid, { status, error, timestamp: new Date().toISOString(), attempts, retryAt })
    if (previous?.status !== status) onChange()
  }

  /** Adds pins (from this peer's API or a trusted peer); true when any was new. */
  function add(entries) {
    const fresh = entries.filter((entry) => !pins.has(entry.cid))
    for (const { cid, name, timestamp } of fresh) {
      pins.set(cid, { cid, name: name ?? '', timestamp: timestamp ?? new Date().toISOString() })
      log(`pinset: added ${cid}`)
    }
    if (fresh.length > 0) {
      void save()
      void reconcile()
    }
    return fresh.length > 0
  }

  const unreachable = new Set() // node addresses whose failure was logged, until one succeeds
  /** Has the node connect to the other peers' nodes it is not connected to: bitswap needs it. */
  async function connectNodes() {
    const { Peers } = await node.call('swarm/peers')
    const connected = new Set((Peers ?? []).map((p) => p.Peer))
    for (const other of peersIpfs()) {
      if (!other?.id || other.id === ipfs.id || connected.has(other.id)) continue
      for (const address of Array.isArray(other.addresses) ? other.addresses : []) {
        try {
          await node.call('swarm/connect', [address])
          log(`node connected to ${address}`)
          unreachable.delete(address)
          break
        } catch (error) {
          if (!unreachable.has(address)) log(`node could not connect to ${address}: ${error.message}`)
          unreachable.add(address)
        }
      }
    }
  }

  function startPin(cid) {
    pinning.add(cid)
    // A retry keeps showing the last failure until it succeeds: "pinning" would hide it.
    if (statuses.get(cid)?.status !== 'pin_error') setStatus(cid, 'pinning')
    // The node answers once every block is held; it gives up (504) when none arrives for a while.
    node
      .call('pin/add', [cid], { timeoutMs: 24 * 3_600_000 })
      .then(
        () => {
          log(`node pinned ${cid}`)
          setStatus(cid, 'pinned')
        },
        (error) => {
          if (signal.aborted) return
          log(`node failed to pin ${cid}: ${error.message}`)
          setStatus(cid, 'pin_error', error.message)
        },
      )
      .finally(() => pinning.delete(cid))
  }

  async function round() {
    try {
      ipfs = await node.id()
      if (nodeError) log('the IPFS node is reachable again')
      nodeError = undefined
    } catch (error) {
      const message = error.cause?.code ?? error.message
      if (nodeError !== message) log(`the IPFS node is not reachable: ${message}`)
      nodeError = message
      ipfs = { id: ipfs.id, addresses: [], error: message }
      return
    }
    await connectNodes()
    const { Keys } = await node.call('pin/ls')
    const held = new Set(Object.keys(Keys ?? {}).map(sameCid))
    for (const cid of pins.keys()) {
      const current = statuses.get(cid)
      if (held.has(sameCid(cid))) {
        if (current?.status !== 'pinned') setStatus(cid, 'pinned')
      } else if (!pinning.has(cid) && pinning.size < MAX_PINNING) {
        if (current?.status !== 'pin_error' || current.retryAt <= Date.now()) startPin(cid)
      } else if (!current) setStatus(cid, 'pinning')
    }
  }

  // One round at a time; a round asked for meanwhile runs once after it.
  let running
  let wanted = false
  function reconcile() {
    if (running) {
      wanted = true
      return running
    }
    running = (async () => {
      do {
        wanted = false
        await round().catch((error) => signal.aborted || log(`reconciling failed: ${error.message}`))
      } while (wanted && !signal.aborted)
      running = undefined
    })()
    return running
  }

  return {
    add,
    reconcile,
    has: (cid) => pins.has(cid),
    list: () => [...pins.values()],
    get: (cid) => pins.get(cid),
    /** This peer's node: {id, addresses, error?}. */
    ipfs: () => ipfs,
    status: (cid) => statuses.get(cid),
    /** This peer's statuses, as the other peers are told them. */
    statuses: () =>
      Object.fromEntries(
        [...statuses].map(([cid, { status, error, timestamp }]) => [cid, { status, error, timestamp }]),
      ),
    saved: () => saving,
  }
}
