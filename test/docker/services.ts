import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { api, type RunningBerth, signIn, startBerth } from '../helpers/server.ts'
import { waitFor } from '../helpers/wait.ts'
import { deleteAndWait, onDocker } from './berth-on-docker.ts'

// A multi-service deployment through `berth serve` on the real engine: `web` depends on `db`,
// which becomes healthy only after a while; `web` reads from `db` by its service name when it
// starts and exits if it cannot, so it reaching running proves the order and the names. One
// status, endpoints per service, logs and usage per service. Registered from providers-docker.test.ts.

interface View {
  id: string
  status: string
  endpoints: Array<{ containerPort: number; url: string; service?: string }>
  spec: { services: Array<{ name: string; env?: Record<string, string> }> }
}

export function dockerServiceTests(setUp: () => Promise<{ image: string; socketPath: string }>) {
  describe('multi-service deployments on docker (e2e)', () => {
    let server: RunningBerth
    let client: ReturnType<typeof api>
    const created: string[] = []

    before(async () => {
      const { socketPath } = await setUp()
      server = await startBerth({ env: onDocker(socketPath) })
      client = api(server.url, (await signIn(server.url)).token)
    })
    after(async () => {
      if (client) await deleteAndWait(client, created)
      await server?.stop()
    })

    it('starts a service once what it depends on is healthy; services reach each other by name', async () => {
      const { image } = await setUp()
      const db =
        "trap 'exit 0' TERM; mkdir -p /tmp/www; httpd -p 80 -h /tmp/www; echo db-starting; " +
        'sleep 2; echo "$ANSWER" > /tmp/www/ok; echo db-ready; while :; do sleep 1 & wait $!; done'
      const web =
        "trap 'exit 0' TERM; mkdir -p /tmp/www; " +
        'wget -qO /tmp/www/index.html http://db/ok || { echo db-unreachable; exit 1; }; ' +
        'wget -qO /tmp/www/qualified http://db.shop/ok || { echo qualified-unreachable; exit 1; }; ' +
        'echo web-fetched; httpd -p 80 -h /tmp/www; while :; do sleep 1 & wait $!; done'
      const response = await client.post<View>('/v1/deployments', {
        name: 'shop',
        services: [
          {
            name: 'web',
            image,
            command: ['sh', '-c', web],
            ports: [{ containerPort: 80 }],
            healthCheck: { type: 'http', port: 80, intervalSeconds: 1 },
            dependsOn: ['db'],
          },
          {
            name: 'db',
            image,
            command: ['sh', '-c', db],
            env: { ANSWER: 'forty-two' },
            secretEnv: ['ANSWER'],
            ports: [{ containerPort: 80 }],
            healthCheck: { type: 'http', port: 80, path: '/ok', intervalSeconds: 1 },
          },
        ],
      })
      assert.equal(response.status, 202, JSON.stringify(response.body))
      const id = response.body.id
      created.push(id)
      assert.equal(
        response.body.spec.services.find((s) => s.name === 'db')?.env?.ANSWER,
        undefined,
        "a service's secret values are never shown",
      )

      const view = await waitFor(
        'shop running',
        async () => {
          const body = (await client.get<View>(`/v1/deployments/${id}`)).body
          if (body.status === 'failed') throw new Error(`failed: ${JSON.stringify(body)}`)
          return body.status === 'running' ? body : null
        },
        60_000,
      )
      assert.deepEqual(view.endpoints.map((e) => e.service).sort(), ['db', 'web'])
      const webUrl = view.endpoints.find((e) => e.service === 'web')!.url
      assert.equal((await (await fetch(webUrl)).text()).trim(), 'forty-two')
      assert.equal((await (await fetch(`${webUrl}/qualified`)).text()).trim(), 'forty-two')

      const events = (
        await client.get<{ items: Array<{ type: string; message?: string }> }>(`/v1/deployments/${id}/events`)
      ).body.items
      assert.ok(
        events.some(
          (e) => e.type === 'waiting_for_service' && e.message === 'waiting for service db to be healthy',
        ),
        'the wait for db is told',
      )
      // web exits if it cannot read from db: it never had to be restarted to get there.
      assert.deepEqual(
        events.filter((e) => ['instance_exited', 'restarted', 'unhealthy'].includes(e.type)),
        [],
      )

      const logsOf = async (query: string) =>
        (await client.get<string>(`/v1/deployments/${id}/logs?${query}`)).body
      const webLog = await logsOf('service=web')
      assert.match(webLog, /web-fetched/)
      assert.doesNotMatch(webLog, /unreachable/)
      assert.doesNotMatch(webLog, /db-ready/)
      assert.match(await logsOf('service=db'), /db-ready/)
      const all = await logsOf('tail=100')
      assert.match(all, /web-fetched/)
      assert.match(all, /db-ready/)
      const unknown = await client.get<{ error: { message: string } }>(
        `/v1/deployments/${id}/logs?service=cache`,
      )
      assert.equal(unknown.status, 400)
      assert.match(unknown.body.error.message, /no service named cache \(services: web, db\)/)

      const usage = (
        await client.get<{ memoryBytes: number; services: Record<string, { memoryBytes: number }> }>(
          `/v1/deployments/${id}/usage`,
        )
      ).body
      assert.deepEqual(Object.keys(usage.services).sort(), ['db', 'web'])
      assert.ok(usage.services.db!.memoryBytes > 0)
      assert.equal(usage.memoryBytes, usage.services.db!.memoryBytes + usage.services.web!.memoryBytes)
    })

    it('fails the deployment when a service others depend on exits before it is ready', async () => {
      const { image } = await setUp()
      const response = await client.post<View>('/v1/deployments', {
        name: 'broken',
        services: [
          // Checked, so it is not ready until it answers: it exits first.
          {
            name: 'db',
            image,
            command: ['sh', '-c', 'echo cannot-start; sleep 1; exit 3'],
            ports: [{ containerPort: 80 }],
            healthCheck: { type: 'tcp', port: 80, intervalSeconds: 1 },
          },
          { name: 'web', image, command: ['sh', '-c', 'echo web-ran; sleep 60'], dependsOn: ['db'] },
        ],
      })
      assert.equal(response.status, 202, JSON.stringify(response.body))
      const id = response.body.id
      created.push(id)
      let last: unknown
      const failed = await waitFor(
        'broken failed',
        async () => {
          const body = (await client.get<View & { error?: string }>(`/v1/deployments/${id}`)).body
          last = body
          return body.status === 'failed' ? body : null
        },
        60_000,
      ).catch(async (error) => {
        const events = (await client.get(`/v1/deployments/${id}/events`)).body
        throw new Error(`${error.message}: ${JSON.stringify(last)} ${JSON.stringify(events)}`)
      })
      assert.match(failed.error ?? '', /service db replica 0 exited \(code 3\) before it was ready/)
    })
  })
}
