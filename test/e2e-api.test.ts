import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import WebSocket from 'ws'
import { api, type RunningBerth, signIn, startBerth } from './helpers/server.ts'
import { waitFor } from './helpers/wait.ts'

// The live and operational surfaces of a real `berth serve`: SSE with resume, WebSocket, logs,
// health, metrics and the API documents.

interface Event {
  seq: number
  type: string
  status?: string
  stage?: string
}

async function readSse(url: string, headers: Record<string, string>, until: (events: Event[]) => boolean) {
  const abort = new AbortController()
  const response = await fetch(url, { headers, signal: abort.signal })
  assert.equal(response.headers.get('content-type')?.split(';')[0], 'text/event-stream')
  const events: Event[] = []
  const decoder = new TextDecoder()
  let buffer = ''
  try {
    for await (const chunk of response.body!) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true })
      let end = buffer.indexOf('\n\n')
      while (end >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const id = /^id: (\d+)$/m.exec(block)?.[1]
        const data = /^data: (.*)$/m.exec(block)?.[1]
        if (data) {
          const event = JSON.parse(data) as Event
          assert.equal(String(event.seq), id, 'the SSE id is the event number')
          events.push(event)
        }
        end = buffer.indexOf('\n\n')
      }
      if (until(events)) break
    }
  } finally {
    abort.abort()
  }
  return events
}

describe('live streams and operations (e2e)', () => {
  let server: RunningBerth
  let token: string
  let id: string

  before(async () => {
    server = await startBerth({
      env: { BERTH_PROVIDERS__SIMULATED__PULL_MS: '100', BERTH_PROVIDERS__SIMULATED__START_MS: '100' },
    })
    token = (await signIn(server.url)).token
    const created = await api(server.url, token).post<{ id: string }>('/v1/deployments', {
      name: 'live',
      image: 'example/app:1',
    })
    assert.equal(created.status, 202)
    id = created.body.id
  })
  after(async () => server?.stop())

  it('streams events as Server-Sent Events until running, and resumes after Last-Event-ID', async () => {
    const auth = { authorization: `Bearer ${token}` }
    const events = await readSse(`${server.url}/v1/deployments/${id}/events?follow=1`, auth, (e) =>
      e.some((x) => x.status === 'running'),
    )
    assert.deepEqual(
      events.map((e) => e.seq),
      events.map((_, i) => i + 1),
    )
    assert.deepEqual(events.map((e) => e.stage).filter(Boolean), [
      'queued',
      'scheduling',
      'pulling',
      'creating',
      'starting',
      'health-checking',
      'running',
    ])
    const resumed = await readSse(
      `${server.url}/v1/deployments/${id}/events`,
      { ...auth, accept: 'text/event-stream', 'last-event-id': '3' },
      (e) => e.some((x) => x.status === 'running'),
    )
    assert.equal(resumed[0]?.seq, 4, 'resumes right after the last event seen')
  })

  it('sends the same events over a WebSocket, live', async () => {
    const socket = new WebSocket(
      `${server.url.replace('http', 'ws')}/v1/deployments/${id}/ws?access_token=${token}`,
    )
    const received: Event[] = []
    socket.on('message', (data) => received.push(JSON.parse(String(data)) as Event))
    await new Promise((resolve, reject) => {
      socket.once('open', resolve)
      socket.once('error', reject)
    })
    await waitFor('the history over the socket', () => received.some((e) => e.status === 'running'))
    const seen = received.length
    assert.equal((await api(server.url, token).post(`/v1/deployments/${id}/stop`)).status, 202)
    await waitFor('the stop to arrive live', () => received.slice(seen).some((e) => e.status === 'stopped'))
    assert.deepEqual(
      received.map((e) => e.seq),
      received.map((_, i) => i + 1),
    )
    socket.close()
  })

  it('serves logs with a tail', async () => {
    const response = await fetch(`${server.url}/v1/deployments/${id}/logs?tail=2`, {
      headers: { authorization: `Bearer ${token}` },
    })
    assert.equal(response.status, 200)
    const lines = (await response.text()).trim().split('\n')
    assert.equal(lines.length, 2)
    for (const line of lines) assert.match(line, /^\d{4}-\d\d-\d\dT[\d:.]+Z (stdout|stderr) .+/)
  })

  it('reports health, metrics and its API documents', async () => {
    const health = await api(server.url).get<{
      status: string
      database: string
      providers: Record<string, string>
    }>('/health')
    assert.deepEqual(
      {
        status: health.body.status,
        database: health.body.database,
        simulated: health.body.providers.simulated,
      },
      { status: 'ok', database: 'pglite', simulated: 'up' },
    )
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    assert.match(metrics, /^berth_deployments\{status="stopped"\} 1$/m)
    assert.match(metrics, /^berth_deploy_duration_seconds_count 1$/m)
    assert.match(metrics, /^# TYPE berth_reconcile_errors_total counter$/m)
    assert.match(
      metrics,
      /^berth_http_request_duration_seconds_count\{method="POST",route="\/v1\/deployments",status="202"\} 1$/m,
    )
    const doc = await api(server.url).get<{
      openapi: string
      paths: Record<string, Record<string, { security?: unknown[] }>>
      components: { securitySchemes: Record<string, unknown> }
      security: unknown[]
    }>('/openapi.json')
    assert.equal(doc.body.openapi, '3.1.0')
    // One way to authenticate, required everywhere but on the routes that need no token.
    assert.deepEqual(Object.keys(doc.body.components.securitySchemes), ['bearer'])
    assert.deepEqual(doc.body.security, [{ bearer: [] }])
    for (const [path, method] of [
      ['/v1/auth/nonce', 'post'],
      ['/v1/auth/verify', 'post'],
      ['/health', 'get'],
    ] as const) {
      assert.deepEqual(doc.body.paths[path]?.[method]?.security, [], `${path} needs no token`)
    }
    assert.equal(doc.body.paths['/v1/deployments']?.post?.security, undefined)
    for (const path of [
      '/v1/deployments',
      '/v1/deployments/{id}',
      '/v1/deployments/{id}/events',
      '/v1/auth/verify',
    ]) {
      assert.ok(doc.body.paths[path], `${path} is documented`)
    }
    const docs = await fetch(`${server.url}/docs`)
    assert.match(await docs.text(), /\/v1\/deployments\/\{id\}\/stop/)
  })
})
