import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { BerthError } from '../src/domain/errors.ts'
import { createOutboundClient, type Resolved } from '../src/outbound/guarded-client.ts'

// The guarded outbound client against servers on loopback addresses, with names resolved by an
// injected resolver: nothing here asks a real DNS server or sends a packet beyond 127.0.0.0/8.

interface Target {
  url: string
  port: number
  hits: number
  stop(): Promise<void>
}

async function serve(
  host: string,
  handler: (path: string, res: import('node:http').ServerResponse) => void,
  port = 0,
): Promise<Target> {
  const target = { hits: 0 } as Target
  const server: Server = createServer((req, res) => {
    target.hits++
    handler(req.url ?? '/', res)
  })
  await new Promise<void>((resolve) => server.listen(port, host, resolve))
  target.port = (server.address() as AddressInfo).port
  target.url = `http://${host}:${target.port}`
  target.stop = () =>
    new Promise((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return target
}

const names =
  (table: Record<string, string[]>) =>
  async (hostname: string): Promise<Resolved[]> => {
    const answer = table[hostname]
    if (!answer) throw new Error(`ENOTFOUND ${hostname}`)
    return answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))
  }

describe('guarded outbound client', () => {
  let open: Target
  let internal: Target
  const what = 'token metadata'

  before(async () => {
    open = await serve('127.0.0.1', (path, res) => {
      if (path === '/hello') return res.end('hello')
      if (path.startsWith('/to/')) {
        res.writeHead(302, { location: decodeURIComponent(path.slice('/to/'.length)) })
        return res.end()
      }
      if (path.startsWith('/chain/')) {
        // /chain/N answers after N redirects.
        const n = Number(path.slice('/chain/'.length))
        if (n === 0) return res.end('end of the chain')
        res.writeHead(n % 2 ? 301 : 307, { location: `/chain/${n - 1}` })
        return res.end()
      }
      if (path === '/big') return res.end('x'.repeat(5000))
      if (path === '/slow') return // never answers
      res.writeHead(404).end()
    })
    internal = await serve('127.0.0.1', (_path, res) => res.end('internal secret'))
  })
  after(async () => {
    await open.stop()
    await internal.stop()
  })

  const refusesQuietly = async (promise: Promise<unknown>) =>
    assert.rejects(promise, (error: unknown) => {
      assert.ok(error instanceof BerthError)
      assert.equal(error.code, 'provider_unavailable')
      // The same words whatever happened: nothing about the host, its address or its answer.
      assert.equal(error.message, 'token metadata could not be fetched')
      return true
    })

  it('refuses loopback, private, link-local and mapped addresses given as literals', async () => {
    const client = createOutboundClient({ allow: [], timeoutMs: 2000, maxBytes: 1024 })
    for (const url of [
      `${internal.url}/`,
      `http://[::1]:${internal.port}/`,
      `http://[::ffff:127.0.0.1]:${internal.port}/`,
      `http://2130706433:${internal.port}/`,
      `http://0x7f.1:${internal.port}/`,
      'http://169.254.169.254/latest/meta-data/',
      'http://10.0.0.1/',
    ]) {
      await refusesQuietly(client.fetch(url, { what }))
    }
    assert.equal(internal.hits, 0)
  })

  it('refuses names that resolve to internal addresses, even when only one answer is', async () => {
    const client = createOutboundClient({
      allow: ['127.0.0.2/32'],
      timeoutMs: 2000,
      maxBytes: 1024,
      resolve: names({
        'internal.test': ['127.0.0.1'],
        'metadata.test': ['169.254.169.254'],
        'private.test': ['10.1.2.3'],
        'v6.test': ['fd00::1'],
        'mixed.test': ['127.0.0.2', '127.0.0.1'],
      }),
    })
    for (const host of ['internal.test', 'metadata.test', 'private.test', 'v6.test', 'mixed.test']) {
      await refusesQuietly(client.fetch(`http://${host}:${internal.port}/`, { what }))
    }
    await refusesQuietly(client.fetch('http://unknown.test/', { what }))
    await refusesQuietly(client.fetch('file:///etc/passwd', { what }))
    await refusesQuietly(client.fetch(`http://user:pw@127.0.0.2:${internal.port}/`, { what }))
    assert.equal(internal.hits, 0)
  })

  it('fetches from a host the operator allows, and refuses a redirect from it to an internal one', async () => {
    const client = createOutboundClient({
      allow: [`127.0.0.1:${open.port}`],
      timeoutMs: 2000,
      maxBytes: 1024,
      resolve: names({ 'internal.test': ['127.0.0.1'] }),
    })
    const hello = await client.fetch(`${open.url}/hello`, { what })
    assert.equal(hello.status, 200)
    assert.equal(hello.body.toString(), 'hello')
    const notFound = await client.fetch(`${open.url}/nothing`, { what })
    assert.equal(notFound.status, 404)

    const redirected = await client.fetch(`${open.url}/to/${encodeURIComponent('/hello')}`, { what })
    assert.equal(redirected.body.toString(), 'hello')
    for (const inside of [`http://internal.test:${internal.port}/`, `${internal.url}/`]) {
      await refusesQuietly(client.fetch(`${open.url}/to/${encodeURIComponent(inside)}`, { what }))
    }
    assert.equal(internal.hits, 0)
  })

  it('follows at most three redirects, and caps the size and the time of an answer', async () => {
    const client = createOutboundClient({ allow: ['127.0.0.1/32'], timeoutMs: 500, maxBytes: 1024 })
    const three = await client.fetch(`${open.url}/chain/3`, { what })
    assert.equal(three.body.toString(), 'end of the chain')
    await refusesQuietly(client.fetch(`${open.url}/chain/4`, { what }))
    await assert.rejects(
      client.fetch(`${open.url}/big`, { what }),
      /token metadata is larger than 1024 bytes/,
    )
    const started = Date.now()
    await refusesQuietly(client.fetch(`${open.url}/slow`, { what }))
    assert.ok(Date.now() - started < 5000, 'the time cap ended it')
  })

  it('connects to the address it checked, not to what the name resolves to a moment later', async () => {
    // A name that answers an allowed address when checked and an internal one afterwards.
    const pinned = await serve('127.0.0.2', (_path, res) => res.end('the checked address'), internal.port)
    try {
      let lookups = 0
      const client = createOutboundClient({
        allow: ['127.0.0.2/32'],
        timeoutMs: 2000,
        maxBytes: 1024,
        resolve: async () => [{ address: lookups++ === 0 ? '127.0.0.2' : '127.0.0.1', family: 4 }],
      })
      const answer = await client.fetch(`http://rebind.test:${internal.port}/`, { what })
      assert.equal(answer.body.toString(), 'the checked address')
      assert.equal(lookups, 1)
      assert.equal(internal.hits, 0)
    } finally {
      await pinned.stop()
    }
  })
})
