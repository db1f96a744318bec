// The cluster-peer role (main.mjs runs it when CLUSTER_IPFSHTTP_NODEMULTIADDRESS is set): a
// stand-in for an IPFS Cluster peer next to one node. Peers meet in a libp2p private network keyed
// by the cluster secret, found by mDNS as the official compose example's peers find each other.
// With every peer trusted ("*"), the pinset is a set every peer may grow: a new pin is pushed to
// every connected peer at once, and full pinsets are exchanged with a peer on connecting and then
// every monitor ping interval, so that a push lost to a restart costs a few seconds, never a pin.
// The contract is in main.mjs.
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { mdns } from '@libp2p/mdns'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { CODE_P2P } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { basicAuth, HttpError, log, onStop, sendJson, serve } from './http.mjs'
import { createPinset, hostPort, nodeClient, parseCid } from './pinset.mjs'

const env = process.env
const DATA = env.IPFS_CLUSTER_PATH || '/data/ipfs-cluster'
const PEERNAME = env.CLUSTER_PEERNAME || hostname()
const INTERVAL_MS = goDuration(env.CLUSTER_MONITORPINGINTERVAL, 15_000)
const TRUSTED = (env.CLUSTER_CRDT_TRUSTEDPEERS ?? '*').split(',').map((p) => p.trim())
// ipfs-cluster's defaults: the REST API on loopback only (the official compose file, like the
// templates, sets 0.0.0.0), the cluster swarm on every interface.
const REST = hostPort(
  env.CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS || '/ip4/127.0.0.1/tcp/9094',
  'the REST API address',
)
const SWARM = env.CLUSTER_LISTENMULTIADDRESS || '/ip4/0.0.0.0/tcp/9096'
/** The protocol the peers exchange their state on: one message each way per stream. */
const PROTOCOL = '/berth-test/ipfs-cluster/state/1.0.0'
/** A peer found by mDNS that could not be joined (another cluster's secret) is retried this late. */
const REDIAL_MS = 30_000
/** The release this stands in for (what the templates name). */
const VERSION = '1.1.2'

/** A Go duration as ipfs-cluster takes it ("2s", "1m30s", "500ms"), in milliseconds. */
function goDuration(text, fallback) {
  if (!text) return fallback
  const units = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)]
  if (parts.map((p) => p[0]).join('') !== text) throw new Error(`not a duration: ${text}`)
  return Math.max(
    100,
    parts.reduce((ms, [, n, unit]) => ms + Number(n) * units[unit], 0),
  )
}

/**
 * The private network's key, in the swarm.key format @libp2p/pnet reads: the secret itself, as
 * ipfs-cluster uses it. Checked without ever echoing it.
 */
function networkKey(secret) {
  if (secret === undefined || secret === '') {
    log('no CLUSTER_SECRET: a random one is used, so this peer will meet no other')
    secret = randomBytes(32).toString('hex')
  }
  if (!/^[0-9a-fA-F]{64}$/.test(secret)) throw new Error('CLUSTER_SECRET must be 64 hex characters')
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${secret.toLowerCase()}`)
}

/** This peer's libp2p key, made on the first start and kept in identity.json, as ipfs-cluster does. */
async function identity() {
  const file = `${DATA}/identity.json`
  try {
    const { private_key } = JSON.parse(await readFile(file, 'utf8'))
    return privateKeyFromProtobuf(Buffer.from(private_key, 'base64'))
  } catch (error) {
    if (error.code !== 'ENOENT') throw new Error(`reading ${file}: ${error.message}`)
  }
  const key = await generateKeyPair('Ed25519')
  const id = peerIdFromPrivateKey(key).toString()
  const text = JSON.stringify({ id, private_key: Buffer.from(privateKeyToProtobuf(key)).toString('base64') })
  await writeFile(file, text, { mode: 0o600 })
  return key
}

const stopping = new AbortController()
const { signal } = stopping
const psk = networkKey(env.CLUSTER_SECRET)
const node = nodeClient(env.CLUSTER_IPFSHTTP_NODEMULTIADDRESS, signal)

const libp2p = await createLibp2p({
  // Started once the protocol handler is in place, so that no early peer finds it missing.
  start: false,
  privateKey: await identity(),
  addresses: { listen: [SWARM] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  // A peer without the secret cannot even finish a handshake: another cluster's peers, found by
  // the same mDNS queries, stay out.
  connectionProtector: preSharedKey({ psk }),
  peerDiscovery: [
    mdns({ interval: Math.min(INTERVAL_MS, 10_000), serviceTag: '_ipfs-cluster-discovery._udp.local' }),
  ],
})
const self = libp2p.peerId.toString()
/** The addresses other peers can dial: the ones mDNS announces, less loopback. */
const ownAddresses = () =>
  libp2p
    .getMultiaddrs()
    .map(String)
    .filter((a) => !a.startsWith('/ip4/127.'))

let broadcastTimer
/** peer id -> the state it last sent: {peername, addresses, ipfs, statuses, seen}. */
const peers = new Map()
const connected = (id) => libp2p.getConnections().some((c) => c.remotePeer.toString() === id)
const livePeers = () => [...peers].filter(([id]) => connected(id))

const pinset = await createPinset({
  dir: DATA,
  node,
  signal,
  peersIpfs: () => livePeers().map(([, state]) => state.ipfs),
  // A pin done (or failed) here is told to the peers at once rather than at the next interval.
  onChange: () => broadcast(),
})

const ownState = () => ({
  peername: PEERNAME,
  addresses: ownAddresses(),
  ipfs: pinset.ipfs(),
  pins: pinset.list(),
  statuses: pinset.statuses(),
})

/** Takes a peer's state: its pins when it is trusted, and what it says of itself and its node. */
function receive(id, state) {
  if (typeof state?.peername !== 'string' || !Array.isArray(state.pins)) throw new Error('not a peer state')
  if (!peers.has(id)) log(`cluster peer ${state.peername} (${id}) joined`)
  peers.set(id, { ...state, seen: Date.now() })
  const pins = state.pins
    .filter((p) => {
      try {
        return typeof p?.cid === 'string' && parseCid(p.cid) === p.cid
      } catch {
        return false
      }
    })
    .map((p) => ({
      cid: p.cid,
      name: String(p.name ?? ''),
      timestamp: String(p.timestamp ?? '') || undefined,
    }))
  // A new pin learnt is passed on, so that peers not connected to its origin learn it too.
  if ((TRUSTED.includes('*') || TRUSTED.includes(id)) && pinset.add(pins)) broadcast()
}

const json = (value) => new TextEncoder().encode(JSON.stringify(value))
const parse = (bytes) => JSON.parse(new TextDecoder().decode(bytes.subarray()))
const MAX_STATE_BYTES = 64 * 1024 * 1024

// Each side of a stream sends its state once and reads the other's: the opener first.
await libp2p.handle(PROTOCOL, async (stream, connection) => {
  const lp = lpStream(stream, { maxDataLength: MAX_STATE_BYTES })
  const options = { signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) }
  try {
    receive(connection.remotePeer.toString(), parse(await lp.read(options)))
    await lp.write(json(ownState()), options)
    await stream.close(options)
  } catch (error) {
    stream.abort(error)
  }
})

const failing = new Map() // peer id -> the last exchange error logged, so a flapping peer logs once
async function exchange(id) {
  const options = { signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) }
  try {
    const connection = libp2p.getConnections().find((c) => c.remotePeer.toString() === id)
    if (!connection) return
    const stream = await connection.newStream(PROTOCOL, options)
    const lp = lpStream(stream, { maxDataLength: MAX_STATE_BYTES })
    await lp.write(json(ownState()), options)
    receive(id, parse(await lp.read(options)))
    await stream.close(options)
    failing.delete(id)
  } catch (error) {
    if (signal.aborted || failing.get(id) === error.message) return
    failing.set(id, error.message)
    log(`exchanging state with ${id} failed: ${error.message}`)
  }
}

/**
 * Sends this peer's state to every connected peer, soon: changes come in bursts (a pinset learnt,
 * pins finishing), and one exchange carries them all.
 */
function broadcast() {
  if (broadcastTimer) return
  broadcastTimer = setTimeout(() => {
    broadcastTimer = undefined
    for (const connection of libp2p.getConnections()) void exchange(connection.remotePeer.toString())
  }, 50)
}

// mDNS only tells of peers; joining them is this peer's part. A peer of another cluster fails the
// private network's handshake and is tried again only after REDIAL_MS, and logged only once.
const refused = new Map() // peer id -> when joining it last failed
const reported = new Set()
libp2p.addEventListener('peer:discovery', ({ detail }) => {
  const id = detail.id.toString()
  if (id === self || connected(id) || Date.now() - (refused.get(id) ?? 0) < REDIAL_MS) return
  const addresses = detail.multiaddrs
    .filter((a) => !a.toString().startsWith('/ip4/127.') && a.toString() !== '/ip6/::1')
    .map((a) => (a.getComponents().some((c) => c.code === CODE_P2P) ? a : a.encapsulate(`/p2p/${id}`)))
  if (addresses.length === 0) return
  refused.set(id, Date.now()) // until the dial ends: discovery repeats while one is in flight
  libp2p.dial(addresses, { signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) }).then(
    () => refused.delete(id),
    (error) => {
      if (signal.aborted || reported.has(id)) return
      reported.add(id)
      log(`could not join ${id} found by mDNS (another cluster's peer?): ${error.message}`)
    },
  )
})
libp2p.addEventListener('peer:connect', ({ detail }) => void exchange(detail.toString()))
libp2p.addEventListener('peer:disconnect', ({ detail }) => {
  const id = detail.toString()
  const state = peers.get(id)
  if (state && peers.delete(id)) log(`cluster peer ${state.peername} (${id}) left`)
})

/** ipfs-cluster's ID object for this peer. */
const ownId = () => {
  const ipfs = pinset.ipfs()
  return {
    id: self,
    peername: PEERNAME,
    addresses: ownAddresses(),
    cluster_peers: [self, ...livePeers().map(([id]) => id)],
    version: VERSION,
    error: '',
    ipfs: { id: ipfs.id, addresses: ipfs.addresses, ...(ipfs.error ? { error: ipfs.error } : {}) },
  }
}

/** ipfs-cluster's GlobalPinInfo: every live peer's status for `cid`, this one's included. */
function globalStatus(cid) {
  const pin = pinset.get(cid)
  const entry = (peername, ipfs, status) => ({
    peername,
    ipfs_peer_id: ipfs?.id ?? '',
    // A peer that has not reported the CID yet has it queued: the pinset reaches it shortly.
    status: status?.status ?? (pin ? 'pinning' : 'unpinned'),
    timestamp: status?.timestamp ?? new Date().toISOString(),
    ...(status?.error ? { error: status.error } : {}),
  })
  const peerMap = { [self]: entry(PEERNAME, pinset.ipfs(), pinset.status(cid)) }
  for (const [id, state] of livePeers())
    peerMap[id] = entry(state.peername, state.ipfs, state.statuses?.[cid])
  return {
    cid,
    name: pin?.name ?? '',
    allocations: [],
    origins: [],
    created: pin?.timestamp,
    peer_map: peerMap,
  }
}

function pin(cid, name) {
  if (pinset.add([{ cid, name }])) broadcast()
}

/** Forwards an add's multipart body to the node as it arrives, and pins the CID cluster-wide. */
async function add(req, res) {
  const type = req.headers['content-type'] ?? ''
  if (!type.startsWith('multipart/form-data')) throw new HttpError(400, 'the add takes a multipart body')
  const { Name, Hash, Size } = await node.call('add', [], {
    body: req,
    headers: { 'content-type': type },
    timeoutMs: 24 * 3_600_000,
  })
  pin(parseCid(Hash), Name)
  log(`added ${Hash} (${Size} bytes) through this peer`)
  const line = JSON.stringify({ name: Name, cid: Hash, size: Number(Size), allocations: [] })
  res.writeHead(200, { 'content-type': 'application/json' }).end(`${line}\n`)
}

const checkAuth = basicAuth(env.CLUSTER_RESTAPI_BASICAUTHCREDENTIALS)

async function restApi(req, res, url) {
  checkAuth(req)
  const path = url.pathname.replace(/\/+$/, '') || '/'
  const route = `${req.method} ${path}`
  if (route === 'GET /id') return sendJson(res, 200, ownId())
  if (route === 'GET /version') return sendJson(res, 200, { version: VERSION })
  if (route === 'GET /peers') {
    const others = livePeers().map(([id, state]) => ({
      id,
      peername: state.peername,
      addresses: state.addresses,
      version: VERSION,
      error: '',
      ipfs: state.ipfs,
    }))
    return sendJson(res, 200, [ownId(), ...others])
  }
  if (route === 'POST /add') return add(req, res)
  if (route === 'GET /pins') {
    // One GlobalPinInfo per line, as ipfs-cluster streams it.
    res.writeHead(200, { 'content-type': 'application/json' })
    return void res.end(
      pinset
        .list()
        .map((p) => `${JSON.stringify(globalStatus(p.cid))}\n`)
        .join(''),
    )
  }
  const match = /^\/pins\/(?:ipfs\/)?([^/]+)$/.exec(path)
  if (match && (req.method === 'GET' || req.method === 'POST')) {
    const cid = parseCid(match[1])
    if (req.method === 'POST') pin(cid, url.searchParams.get('name') ?? '')
    return sendJson(res, 200, globalStatus(cid))
  }
  throw new HttpError(404, `no route ${route}`)
}

await libp2p.start()
// Started before the node is reached: /id answers (with the node's error) while it is down.
const server = await serve('rest', REST.port, restApi, {
  host: REST.host,
  errorBody: (code, message) => ({ code, message }),
})
log(`started cluster peer ${PEERNAME} ${self}, its node at ${env.CLUSTER_IPFSHTTP_NODEMULTIADDRESS}`)

// Each interval: the node checked against the pinset, and the full state exchanged with every peer.
void (async () => {
  while (!signal.aborted) {
    await pinset.reconcile()
    broadcast()
    await sleep(INTERVAL_MS, undefined, { signal }).catch(() => {})
  }
})()

onStop([server], async () => {
  stopping.abort()
  await libp2p.stop()
  await pinset.saved()
})
