import assert from 'node:assert/strict'
import { createServer as createHttpServer, type Server } from 'node:http'
import { type AddressInfo, createServer as createTcpServer } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { Observed } from '../providers/provider.ts'
import { probe, probeInstances } from './probe.ts'

// Probes against real servers on this machine: an HTTP server with a few paths, a TCP listener,
// one that drops every connection at once (as Docker's proxy does with nothing behind it), and a
// port nothing listens on.

const portOf = (server: { address(): unknown }) => (server.address() as AddressInfo).port
const listen = <S extends { listen(port: number, host: string, cb: () => void): unknown }>(server: S) =>
  new Promise<S>((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))

describe('health probes', () => {
  let http: Server
  let tcp: ReturnType<typeof createTcpServer>
  let dropping: ReturnType<typeof createTcpServer>
  let closedPort: number
  const held: Array<{ destroy(): void }> = []

  before(async () => {
    http = await listen(
      createHttpServer((req, res) => {
        if (req.url === '/ok') res.writeHead(204).end()
        else if (req.url === '/moved') res.writeHead(302, { location: '/ok' }).end()
        else if (req.url === '/slow')
          held.push(res.socket!) // never answers
        else res.writeHead(404).end('no')
      }),
    )
    tcp = await listen(createTcpServer((socket) => held.push(socket)))
    dropping = await listen(createTcpServer((socket) => socket.destroy()))
    const spare = await listen(createTcpServer())
    closedPort = portOf(spare)
    await new Promise((resolve) => spare.close(resolve))
  })
  after(async () => {
    for (const socket of held) socket.destroy()
    await Promise.all([http, tcp, dropping].map((s) => new Promise((resolve) => s.close(resolve))))
  })

  const httpCheck = (path: string, timeoutSeconds = 2) => ({ type: 'http' as const, path, timeoutSeconds })
  const tcpCheck = { type: 'tcp' as const, timeoutSeconds: 2 }
  const at = (port: number) => ({ host: '127.0.0.1', port })

  it('passes HTTP on 2xx and 3xx, fails on 4xx with the status', async () => {
    assert.equal((await probe(httpCheck('/ok'), at(portOf(http)))).ok, true)
    assert.equal((await probe(httpCheck('/moved'), at(portOf(http)))).ok, true)
    const missing = await probe(httpCheck('/missing'), at(portOf(http)))
    assert.equal(missing.ok, false)
    assert.match(missing.detail, /404/)
  })

  it('fails HTTP that does not answer within the timeout, in about that time', async () => {
    const started = Date.now()
    const slow = await probe(httpCheck('/slow', 1), at(portOf(http)))
    const took = Date.now() - started
    assert.equal(slow.ok, false)
    assert.match(slow.detail, /no answer within 1000 ms/)
    // The upper bound only catches a probe that ignores its timeout; a busy machine adds seconds.
    assert.ok(took >= 900 && took < 10_000, `took ${took} ms`)
  })

  it('fails HTTP and TCP on a port nothing listens on', async () => {
    assert.equal((await probe(httpCheck('/'), at(closedPort))).ok, false)
    const refused = await probe(tcpCheck, at(closedPort))
    assert.equal(refused.ok, false)
    assert.match(refused.detail, /ECONNREFUSED/)
  })

  it('passes TCP on a listener that keeps the connection, fails on one that drops it', async () => {
    assert.equal((await probe(tcpCheck, at(portOf(tcp)))).ok, true)
    const dropped = await probe(tcpCheck, at(portOf(dropping)))
    assert.equal(dropped.ok, false)
    assert.match(dropped.detail, /closed at once/)
  })

  it('probes each running instance at its address for the checked port', async () => {
    const instance = (replica: number, port: number) => ({
      instanceId: `i${replica}`,
      deploymentId: 'd',
      ownerId: 'o',
      replica,
      state: 'running' as const,
      health: 'unknown' as const,
      addresses: [{ containerPort: 80, protocol: 'tcp' as const, host: '127.0.0.1', port }],
    })
    const check = { type: 'http', port: 80, path: '/ok', intervalSeconds: 1, timeoutSeconds: 2 } as const
    const full = { ...check, healthyThreshold: 1, unhealthyThreshold: 1 }
    const good: Observed = { deploymentId: 'd', endpoints: [], instances: [instance(0, portOf(http))] }
    assert.equal(await probeInstances(good, () => full), null)
    const mixed: Observed = { ...good, instances: [instance(0, portOf(http)), instance(1, closedPort)] }
    assert.equal((await probeInstances(mixed, () => full))?.replica, 1)
    assert.equal(await probeInstances(mixed, (index) => (index === 0 ? full : undefined)), null)
    const unpublished = await probeInstances(good, () => ({ ...full, port: 8080 }))
    assert.match(unpublished?.detail ?? '', /port 8080 is not published/)
  })
})
