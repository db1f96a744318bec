// Pieces shared by both roles' HTTP servers (the node's API and gateway, the cluster peer's REST API):
// one error type carrying a status, one mapping from any error to a status and an error body, the
// upload reader with its size limit, the REST API's basic auth, and the clean stop on SIGTERM.
import { timingSafeEqual } from 'node:crypto'
import { createServer } from 'node:http'
import busboy from 'busboy'

/** The limit on an uploaded file: large enough for any template test, small enough to fail fast. */
export const MAX_UPLOAD_BYTES = 1024 ** 3

export class HttpError extends Error {
  constructor(status, message, options) {
    super(message, options)
    this.status = status
  }
}

/** Written to stdout as one line: the contract the template tests read. */
export function log(message) {
  console.log(`${new Date().toISOString()} ${message}`)
}

/**
 * A full disk surfaces from blockstore-fs and datastore-fs wrapped in their own errors (and, from
 * parallel writes, in AggregateErrors), so the whole cause chain is searched for the errno.
 */
export function isStorageFull(error, seen = new Set()) {
  if (error == null || typeof error !== 'object' || seen.has(error)) return false
  seen.add(error)
  if (error.code === 'ENOSPC' || /ENOSPC|no space left on device/i.test(String(error.message))) return true
  if (Array.isArray(error.errors) && error.errors.some((e) => isStorageFull(e, seen))) return true
  return isStorageFull(error.cause, seen)
}

function statusOf(error) {
  if (error instanceof HttpError) return error.status
  if (isStorageFull(error)) return 507
  // Helia's own errors for a CID that names something other than a file.
  if (['NotAFileError', 'NotUnixFSError', 'NoContentError', 'InvalidParametersError'].includes(error?.name))
    return 400
  return 500
}

export function sendJson(res, status, body) {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** Kubo's error body; Code 0 is its generic error. */
export const kuboError = (_status, message) => ({ Message: message, Code: 0, Type: 'error' })

function sendError(res, error, errorBody) {
  const status = statusOf(error)
  // Once bytes of a file have gone out the status cannot change: cutting the connection is the
  // only way left to tell the client the body is incomplete.
  if (res.headersSent) return void res.destroy()
  const full = status === 507 && !(error instanceof HttpError)
  const message = full ? `the node's storage is full: ${error.message}` : String(error?.message ?? error)
  sendJson(res, status, errorBody(status, message))
}

/**
 * A server whose handler may throw: every failure is answered (in `errorBody`'s shape, Kubo's by
 * default), and 5xx ones are logged.
 */
export function serve(name, port, handler, { host = '0.0.0.0', errorBody = kuboError } = {}) {
  const server = createServer(async (req, res) => {
    try {
      await handler(req, res, new URL(req.url ?? '/', 'http://node'))
    } catch (error) {
      if (statusOf(error) >= 500)
        log(`${name} ${req.method} ${req.url?.split('?')[0]} failed: ${error.message}`)
      sendError(res, error, errorBody)
    }
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve(server))
  })
}

/**
 * As PID 1 in a container, Node gets no default signal handling: without this a stop waits for the
 * engine's SIGKILL. `stop` closes what the role holds; a stuck one is cut off after two seconds.
 */
export function onStop(servers, stop) {
  const shutdown = async (signal) => {
    log(`stopping on ${signal}`)
    setTimeout(() => process.exit(0), 2_000).unref()
    for (const server of servers) {
      server.close()
      server.closeAllConnections()
    }
    await stop().catch((error) => log(`stopping failed: ${error.message}`))
    process.exit(0)
  }
  process.once('SIGTERM', shutdown)
  process.once('SIGINT', shutdown)
}

/**
 * The uploaded file of an add: the first file part of a multipart body (what `curl -F file=@x`
 * sends), or the raw body otherwise. Parts are streamed, never held in memory.
 */
export function readUpload(req) {
  if (Number(req.headers['content-length']) > MAX_UPLOAD_BYTES + 64 * 1024)
    throw new HttpError(413, `the upload is over the ${MAX_UPLOAD_BYTES}-byte limit`)
  if (!String(req.headers['content-type']).startsWith('multipart/form-data'))
    return Promise.resolve({ name: undefined, bytes: req })
  return new Promise((resolve, reject) => {
    let parser
    try {
      parser = busboy({ headers: req.headers, limits: { files: 1 } })
    } catch (error) {
      return reject(new HttpError(400, error.message))
    }
    parser.on('file', (_field, bytes, info) => resolve({ name: info.filename, bytes }))
    parser.on('error', (error) => reject(new HttpError(400, error.message)))
    // Settles nothing once a file part was found; otherwise there was none.
    parser.on('close', () => reject(new HttpError(400, 'the multipart body has no file part')))
    // A pipe does not pass on a client hanging up: without this the add would wait forever.
    req.once('close', () => req.complete || parser.destroy(new HttpError(400, 'the upload was cut short')))
    req.pipe(parser)
  })
}

/** Passes `source` through, counting into `counter.bytes` and failing once over the limit. */
export async function* limited(source, counter, limit = MAX_UPLOAD_BYTES) {
  for await (const chunk of source) {
    counter.bytes += chunk.length
    if (counter.bytes > limit) throw new HttpError(413, `the upload is over the ${limit}-byte limit`)
    yield chunk
  }
}

/** Aborts when `ms` pass without a touch: a slow large transfer is fine, a stalled one is not. */
export function idleSignal(ms, what) {
  const controller = new AbortController()
  let timer
  const touch = () => {
    clearTimeout(timer)
    timer = setTimeout(() => controller.abort(new HttpError(504, `${what}: nothing arrived in ${ms} ms`)), ms)
  }
  touch()
  return { signal: controller.signal, touch, clear: () => clearTimeout(timer) }
}

/**
 * The basic-auth check IPFS Cluster's REST API makes when CLUSTER_RESTAPI_BASICAUTHCREDENTIALS
 * (`user:password`, several separated by commas) is set: a request without a matching pair is
 * answered 401. Passwords are compared in constant time. Without credentials, everything passes.
 */
export function basicAuth(setting) {
  const pairs = (setting ?? '')
    .split(',')
    .map((pair) => pair.trim())
    .filter((pair) => pair.includes(':'))
    .map((pair) => Buffer.from(pair))
  return (req) => {
    if (pairs.length === 0) return
    const header = req.headers.authorization ?? ''
    const given = Buffer.from(header.startsWith('Basic ') ? header.slice(6) : '', 'base64')
    const ok = pairs.some((pair) => pair.length === given.length && timingSafeEqual(pair, given))
    if (!ok) throw new HttpError(401, 'unauthorized: this API needs its basic-auth credentials')
  }
}
