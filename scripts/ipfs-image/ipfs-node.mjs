// The node role (main.mjs runs it when no cluster peer env is set): a stand-in for Kubo, Helia with
// its data on disk, the subset of Kubo's RPC API that templates and the cluster-peer role use, and a
// path gateway. The contract is in main.mjs.
import { pipeline } from 'node:stream/promises'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { unixfs } from '@helia/unixfs'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { CODE_P2P, multiaddr } from '@multiformats/multiaddr'
import { FsBlockstore } from 'blockstore-fs'
import { FsDatastore } from 'datastore-fs'
import { createHeliaLight } from 'helia'
import { CID } from 'multiformats/cid'
import {
  HttpError,
  idleSignal,
  isStorageFull,
  limited,
  log,
  onStop,
  readUpload,
  sendJson,
  serve,
} from './http.mjs'

/** Kubo's repository variable; the official image's default. */
const DATA = process.env.IPFS_PATH || '/data/ipfs'
/** How long a read or a pin waits for the next block from peers before answering 504. */
const FETCH_TIMEOUT_MS = Number(process.env.IPFS_FETCH_TIMEOUT_MS) || 30_000
/** The Kubo release this stands in for (what the templates name), reported by /api/v0/version. */
const KUBO_VERSION = '0.32.1'

// Blocks and the datastore (pins, the peer store and the keychain holding this node's libp2p key,
// so its peer id survives restarts) live on the volume.
const blockstore = new FsBlockstore(`${DATA}/blocks`)
const datastore = new FsDatastore(`${DATA}/datastore`)
await blockstore.open()
await datastore.open()

// The "light" Helia with only the parts wanted: createHelia's defaults would also bootstrap to
// public peers, run the DHT and fetch from public HTTP gateways, and none of that is reachable or
// wanted here. Like a Kubo node without a swarm.key it is on the public network (no pnet): it only
// ever meets the peers it is told to connect to. Bitswap to them is how blocks arrive from elsewhere.
const helia = withBitswap(
  withLibp2pLight(createHeliaLight({ blockstore, datastore }), {
    addresses: { listen: ['/ip4/0.0.0.0/tcp/4001'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // Identify tells each side which protocols (bitswap) the other speaks.
    services: { identify: identify() },
  }),
)
await helia.start()
const { libp2p } = helia
const fs = unixfs(helia)
const stopping = new AbortController()
libp2p.addEventListener('peer:connect', (e) => log(`peer connected ${e.detail}`))
libp2p.addEventListener('peer:disconnect', (e) => log(`peer disconnected ${e.detail}`))

// Blocks written by an add that failed on a full disk are unpinned garbage; collecting them once no
// write is in flight (collection would race an add that has not pinned yet) frees the space again.
let writing = 0
let collectWanted = false
async function write(work) {
  writing++
  try {
    return await work()
  } catch (error) {
    if (isStorageFull(error)) collectWanted = true
    throw error
  } finally {
    if (--writing === 0 && collectWanted) {
      collectWanted = false
      helia.gc().then(
        () => log('collected unpinned blocks after the storage filled up'),
        (error) => log(`collecting unpinned blocks failed: ${error.message}`),
      )
    }
  }
}

async function hasPin(cid) {
  try {
    await helia.pins.get(cid)
    return true
  } catch (error) {
    if (error.name === 'NotFoundError') return false
    throw error
  }
}

/** Pins `cid`, walking its whole DAG: blocks not held here are fetched from peers over bitswap. */
async function pinAll(cid, options = {}) {
  try {
    for await (const _block of helia.pins.add(cid, options)) options.onBlock?.()
  } catch (error) {
    // Two requests for the same CID can race; the first one wins.
    if (error.name !== 'AlreadyPinnedError') throw error
  }
}

// One fetch per CID at a time, however many callers ask for it (a cluster peer retries).
const fetching = new Map()
function pinFromPeers(cid) {
  const key = cid.toString()
  if (!fetching.has(key)) {
    const run = write(async () => {
      if (await hasPin(cid)) return
      // Aborted only when no block arrives for a while: a large DAG may take long, a stall may not.
      const idle = idleSignal(FETCH_TIMEOUT_MS, `fetching ${cid} from peers`)
      try {
        await pinAll(cid, { signal: AbortSignal.any([idle.signal, stopping.signal]), onBlock: idle.touch })
      } catch (error) {
        throw idle.signal.aborted ? idle.signal.reason : error
      } finally {
        idle.clear()
      }
      log(`pinned ${cid} from peers`)
    }).finally(() => fetching.delete(key))
    fetching.set(key, run)
  }
  return fetching.get(key)
}

function parseCid(text) {
  try {
    return CID.parse(String(text).replace(/^\/ipfs\//, ''))
  } catch {
    throw new HttpError(400, `invalid CID: ${text}`)
  }
}

/**
 * Streams a file. The first chunk is awaited before the status goes out, so that a CID nobody
 * can deliver answers 504 rather than a 200 with an empty body.
 */
async function sendFile(res, cid, headers = {}, headOnly = false) {
  const idle = idleSignal(FETCH_TIMEOUT_MS, `fetching ${cid}`)
  try {
    const chunks = fs.cat(cid, { signal: idle.signal })[Symbol.asyncIterator]()
    const first = await chunks.next()
    res.writeHead(200, { 'content-type': 'application/octet-stream', ...headers })
    if (headOnly) return void res.end()
    await pipeline(async function* () {
      if (!first.done) yield first.value
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
        idle.touch()
        yield next.value
      }
    }, res)
  } catch (error) {
    throw idle.signal.aborted ? idle.signal.reason : error
  } finally {
    idle.clear()
  }
}

async function add(req, res, url) {
  const upload = await readUpload(req)
  const counter = { bytes: 0 }
  try {
    const cid = await write(async () => {
      const cid = await fs.addByteStream(limited(upload.bytes, counter))
      await pinAll(cid)
      return cid
    })
    log(`pinned ${cid} (${counter.bytes} bytes added here)`)
    const name = upload.name ?? url.searchParams.get('name') ?? cid.toString()
    sendJson(res, 200, { Name: name, Hash: cid.toString(), Size: String(counter.bytes) })
  } catch (error) {
    // The rest of the body is discarded so the client gets the answer instead of a stalled upload.
    req.unpipe()
    req.resume()
    throw error
  }
}

/** Kubo's swarm/connect: every `arg` is a multiaddr ending in /p2p/<peer id>. */
async function swarmConnect(args) {
  if (args.length === 0) throw new HttpError(400, 'argument "address" is required')
  const strings = []
  for (const arg of args) {
    let address
    try {
      address = multiaddr(arg)
    } catch {
      throw new HttpError(400, `invalid multiaddr: ${arg}`)
    }
    const peer = address.getComponents().findLast((c) => c.code === CODE_P2P)?.value
    if (!peer) throw new HttpError(400, `${arg} does not name a peer (/p2p/<id>)`)
    try {
      await libp2p.dial(address, { signal: AbortSignal.any([AbortSignal.timeout(10_000), stopping.signal]) })
    } catch (error) {
      throw new HttpError(500, `connect ${peer} failure: ${error.message}`)
    }
    strings.push(`connect ${peer} success`)
  }
  return { Strings: strings }
}

async function api(req, res, url) {
  // Kubo takes every RPC as a POST (a browser cannot be tricked into one by a link).
  if (req.method !== 'POST') throw new HttpError(405, 'the RPC API takes POST only')
  const arg = url.searchParams.get('arg')
  switch (url.pathname) {
    case '/api/v0/add':
      return add(req, res, url)
    case '/api/v0/cat':
      return sendFile(res, parseCid(arg))
    case '/api/v0/pin/add': {
      const cid = parseCid(arg)
      await pinFromPeers(cid)
      return sendJson(res, 200, { Pins: [cid.toString()] })
    }
    case '/api/v0/pin/ls': {
      if (arg && !(await hasPin(parseCid(arg)))) throw new HttpError(500, `path '${arg}' is not pinned`)
      const cids = []
      if (arg) cids.push(parseCid(arg).toString())
      else for await (const { cid } of helia.pins.ls()) cids.push(cid.toString())
      return sendJson(res, 200, { Keys: Object.fromEntries(cids.map((c) => [c, { Type: 'recursive' }])) })
    }
    case '/api/v0/swarm/connect':
      return sendJson(res, 200, await swarmConnect(url.searchParams.getAll('arg')))
    case '/api/v0/swarm/peers':
      return sendJson(res, 200, {
        Peers: libp2p.getConnections().map((c) => ({
          Addr: c.remoteAddr.decapsulateCode(CODE_P2P).toString(),
          Peer: c.remotePeer.toString(),
        })),
      })
    case '/api/v0/id':
      return sendJson(res, 200, {
        ID: libp2p.peerId.toString(),
        Addresses: libp2p.getMultiaddrs().map(String),
        AgentVersion: `kubo/${KUBO_VERSION}/berth-test-helia`,
      })
    case '/api/v0/version':
      return sendJson(res, 200, { Version: KUBO_VERSION, Commit: 'berth-test-helia', System: 'amd64/linux' })
    default:
      throw new HttpError(404, `no such command: ${url.pathname}`)
  }
}

async function gateway(req, res, url) {
  if (url.pathname === '/health') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
  const match = /^\/ipfs\/([^/]+)\/?$/.exec(url.pathname)
  if (!match) throw new HttpError(404, 'the gateway serves /ipfs/<cid> and /health')
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'GET or HEAD only')
  const cid = parseCid(match[1])
  // Content addressed: the bytes behind a CID never change.
  const headers = { etag: `"${cid}"`, 'cache-control': 'public, max-age=29030400, immutable' }
  return sendFile(res, cid, headers, req.method === 'HEAD')
}

// Listening only once Helia is up makes the health check answering mean the node is usable.
const servers = await Promise.all([serve('api', 5001, api), serve('gateway', 8080, gateway)])
log(`started IPFS node ${libp2p.peerId} with its data in ${DATA}`)

onStop(servers, async () => {
  stopping.abort()
  await helia.stop()
})
