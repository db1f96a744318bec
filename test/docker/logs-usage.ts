import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import WebSocket from 'ws'
import { createPostgresDatabase } from '../helpers/db.ts'
import { promtoolProblems } from '../helpers/promtool.ts'
import { api, type RunningBerth, signIn, startBerth } from '../helpers/server.ts'
import { waitFor } from '../helpers/wait.ts'
import { deleteAndWait, onDocker } from './berth-on-docker.ts'

// `berth serve` on docker: logs as SSE and over a WebSocket (stdout and stderr apart, dated), and
// usage sampled into /metrics and the usage_samples table. Registered from providers-docker.test.ts.

interface LogView {
  at: string
  stream: 'stdout' | 'stderr'
  text: string
}

export function dockerLogsAndUsageTests(setUp: () => Promise<{ image: string; socketPath: string }>) {
  describe('logs and usage of docker deployments (e2e)', () => {
    let server: RunningBerth
    let database: Awaited<ReturnType<typeof createPostgresDatabase>>
    let client: ReturnType<typeof api>
    let token: string
    let id: string

    before(async () => {
      const { image, socketPath } = await setUp()
      database = await createPostgresDatabase()
      server = await startBerth({
        databaseUrl: database.url,
        env: {
          ...onDocker(socketPath),
          BERTH_USAGE__SAMPLE_INTERVAL_SECONDS: '1',
        },
      })
      ;({ token } = await signIn(server.url))
      client = api(server.url, token)
      const script =
        "trap 'exit 0' TERM; httpd -p 80 -h /www; echo to-stdout; echo to-stderr >&2; " +
        'while :; do sleep 1 & wait $!; echo alive; done'
      const created = await client.post<{ id: string }>('/v1/deployments', {
        name: 'logs',
        image,
        command: ['sh', '-c', script],
        ports: [{ containerPort: 80 }],
      })
      assert.equal(created.status, 202, JSON.stringify(created.body))
      id = created.body.id
      await waitFor(
        'running',
        async () => (await client.get<{ status: string }>(`/v1/deployments/${id}`)).body.status === 'running',
        30_000,
      )
    })
    after(async () => {
      if (id) await deleteAndWait(client, [id])
      await server?.stop()
      await database?.drop()
    })

    it('streams log lines as Server-Sent Events, each {at, stream, text}', async () => {
      const abort = new AbortController()
      const response = await fetch(`${server.url}/v1/deployments/${id}/logs?tail=10&follow=1`, {
        headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
        signal: abort.signal,
      })
      assert.equal(response.status, 200)
      assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/)
      const lines: LogView[] = []
      const decoder = new TextDecoder()
      let buffered = ''
      // Past the tail, follow must bring a new "alive" line within a few seconds.
      const started = Date.now()
      for await (const chunk of response.body!) {
        buffered += decoder.decode(chunk as Uint8Array, { stream: true })
        const events = buffered.split('\n\n')
        buffered = events.pop() ?? ''
        for (const event of events) {
          const data = event.split('\n').find((l) => l.startsWith('data:'))
          if (event.includes('event: log') && data) lines.push(JSON.parse(data.slice(5)) as LogView)
        }
        if (lines.some((l) => l.text === 'alive' && Date.parse(l.at) > started)) break
      }
      abort.abort()
      const stderr = lines.find((l) => l.text === 'to-stderr')
      assert.equal(stderr?.stream, 'stderr')
      assert.equal(lines.find((l) => l.text === 'to-stdout')?.stream, 'stdout')
      for (const line of lines) assert.ok(!Number.isNaN(Date.parse(line.at)), `dated: ${line.at}`)
    })

    it('sends a log tail over a WebSocket, one JSON line per message, then closes', async () => {
      const socket = new WebSocket(
        `${server.url.replace('http', 'ws')}/v1/deployments/${id}/logs/ws?tail=1000&access_token=${token}`,
      )
      const lines: LogView[] = []
      const code = await new Promise<number>((resolve, reject) => {
        socket.on('message', (data) => lines.push(JSON.parse(data.toString()) as LogView))
        socket.on('close', (c) => resolve(c))
        socket.on('error', reject)
      })
      assert.equal(code, 1000)
      assert.equal(lines.find((l) => l.text === 'to-stderr')?.stream, 'stderr')
      assert.ok(lines.some((l) => l.text === 'alive' && l.stream === 'stdout'))
      const bad = await client.get(`/v1/deployments/${id}/logs/ws?tail=-1`)
      assert.equal(bad.status, 400)
    })

    it('samples CPU, memory and network into /metrics and usage_samples', async () => {
      const endpoint = (await client.get<{ endpoints: Array<{ url: string }> }>(`/v1/deployments/${id}`)).body
        .endpoints[0]!.url
      // Some traffic, so the network counters move.
      for (let i = 0; i < 5; i++) await (await fetch(endpoint)).text()
      const gauge = (text: string, name: string) => {
        const match = new RegExp(`^${name}\\{deployment="${id}"\\} (\\S+)$`, 'm').exec(text)
        return match ? Number(match[1]) : undefined
      }
      // Samples come every second, and one taken before the requests can already count a few bytes
      // received (the network's own chatter): wait for a sample with traffic both ways.
      const metrics = await waitFor('usage gauges with traffic', async () => {
        const text = (await client.get<string>('/metrics')).body
        const rx = gauge(text, 'berth_deployment_network_rx_bytes') ?? 0
        const tx = gauge(text, 'berth_deployment_network_tx_bytes') ?? 0
        return rx > 0 && tx > 0 ? text : undefined
      })
      assert.ok((gauge(metrics, 'berth_deployment_memory_bytes') ?? 0) > 0)
      assert.ok((gauge(metrics, 'berth_deployment_cpu_percent') ?? -1) >= 0)
      assert.equal(promtoolProblems(metrics), '', 'promtool check metrics finds nothing')

      const db = new pg.Client({ connectionString: database.url })
      await db.connect()
      try {
        const { rows } = await db.query(
          'select at, cpu_percent, memory_bytes, rx_bytes, tx_bytes from usage_samples where deployment_id = $1 order by at',
          [id],
        )
        assert.ok(rows.length >= 1)
        const last = rows.at(-1)
        assert.ok(Number(last.memory_bytes) > 0)
        assert.ok(Number(last.rx_bytes) > 0)
      } finally {
        await db.end()
      }
    })
  })
}
