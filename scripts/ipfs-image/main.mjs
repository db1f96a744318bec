// An IPFS test image for berth's template tests: no registry is reachable there, so images.mirror
// maps both official images the templates name, ipfs/kubo and ipfs/ipfs-cluster, to this one image.
// It plays either part, chosen by the environment the template gives it, with the official images'
// variables, paths and ports: the cluster-peer role when CLUSTER_IPFSHTTP_NODEMULTIADDRESS is set,
// the node role otherwise. Both run as uid 1000 on a read-only root (only the data volume and /tmp
// are written).
//
// Contract (what templates and tests may rely on):
//
// Node role (Kubo's subset; Helia, in ipfs-node.mjs)
//   env   IPFS_PATH (default /data/ipfs): blocks, pins and the libp2p key (the peer id survives
//         restarts). IPFS_FETCH_TIMEOUT_MS (default 30000): a read or pin waiting this long for
//         the next block from peers answers 504. IPFS_PROFILE is accepted and ignored.
//   4001  libp2p over TCP (noise, yamux), on the public network as a Kubo node without a swarm.key
//         is, but with no bootstrap, DHT or mDNS: it only meets the peers it is told to connect to.
//   5001  RPC API, POST only. add (one multipart file part, or a raw body) -> {Name, Hash (CIDv1),
//         Size}, pinned; cat?arg=<cid>; pin/add?arg=<cid> (fetched over bitswap from connected
//         peers) -> {Pins: [cid]}, 504 when nothing arrives; pin/ls[?arg=<cid>] -> {Keys: {cid:
//         {Type: "recursive"}}}; swarm/connect?arg=<multiaddr/p2p/id> -> {Strings: ["connect <id>
//         success"]}; swarm/peers -> {Peers: [{Addr, Peer}]}; id -> {ID, Addresses, AgentVersion};
//         version -> {Version}. Errors: {Message, Code: 0, Type: "error"} with a 4xx/5xx; 413 over
//         1 GiB; 507 when the node's storage is full (and it keeps running).
//   8080  GET|HEAD /ipfs/<cid> (from peers over bitswap when not held here, 504 on timeout), so
//         /ipfs/bafkqaaa (the empty inline CID) answers 200 at once; GET /health -> 200 "ok".
//         Nothing listens before the node is up.
//
// Cluster-peer role (IPFS Cluster's subset, in cluster.mjs and pinset.mjs)
//   env   CLUSTER_IPFSHTTP_NODEMULTIADDRESS: its node's API, /dns4|ip4/<host>/tcp/<port>.
//         CLUSTER_SECRET: 64 hex, the key of the peers' private network (random when unset, as
//         ipfs-cluster's init does: such a peer meets nobody). CLUSTER_PEERNAME (default the
//         host name). CLUSTER_CRDT_TRUSTEDPEERS: "*" (the default) or peer ids whose pins are
//         taken. CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS (default /ip4/127.0.0.1/tcp/9094).
//         CLUSTER_LISTENMULTIADDRESS (default /ip4/0.0.0.0/tcp/9096). CLUSTER_MONITORPINGINTERVAL
//         (Go duration, default 15s): how often peers reconcile. IPFS_CLUSTER_PATH (default
//         /data/ipfs-cluster): identity.json (its libp2p key) and pinset.json.
//   9096  libp2p over TCP in a private network keyed by the secret; peers find each other by mDNS
//         and exchange their full pinsets and pin statuses on every connection and interval.
//   9094  REST API; with CLUSTER_RESTAPI_BASICAUTHCREDENTIALS (user:password[,…]) every request
//         needs one of those pairs as basic auth (else 401). GET /id -> {id, peername, addresses, ipfs: {id, addresses}};
//         GET /peers -> [that for every peer]; POST /add (multipart, one file part) -> one JSON
//         line {name, cid, size, allocations: []}, pinned cluster-wide; POST /pins/<cid> -> the
//         pin's status; GET /pins -> one status per line; GET /pins/<cid> -> {cid, peer_map:
//         {<peer id>: {peername, ipfs_peer_id, status: pinned|pinning|pin_error, error?}}}.
//         Errors: {code, message}. Every peer makes its node pin every CID of the pinset.
//
// Both roles exit within two seconds of SIGTERM and log one line per event to stdout.
import './node20.mjs'
import { log } from './http.mjs'

// A background failure (say, the peer store written on a full disk) must not take the process down.
process.on('unhandledRejection', (error) => log(`unhandled: ${error?.message ?? error}`))

try {
  await import(process.env.CLUSTER_IPFSHTTP_NODEMULTIADDRESS ? './cluster.mjs' : './ipfs-node.mjs')
} catch (error) {
  // A bad variable or an unreadable volume: one line saying which, not a stack of module frames.
  log(`cannot start: ${error.message}`)
  process.exit(1)
}
