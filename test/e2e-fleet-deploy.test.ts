import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import Docker from 'dockerode'
import { generatePrivateKey } from 'viem/accounts'
import { buildTestImage, type DockerEngine, ensureDockerEngine } from '../scripts/docker.ts'
import { LABEL } from '../src/providers/docker/labels.ts'
import { killAgents, startAgentProcess } from './helpers/agent-process.ts'
import { api, type RunningBerth, type SignedIn, signIn, startBerthOnPostgres } from './helpers/server.ts'
import { waitFor } from './helpers/wait.ts'

// Deployments on the fleet with real processes: a control plane on PostgreSQL, two `berth agent`
// processes sharing this machine's Docker engine (each sees only its own containers: they carry
// the label berth.managed=node-<id>), and the busybox test image serving HTTP. Replicas spread
// over the nodes; an agent killed with SIGKILL loses its node, whose replica then runs on the
// other one; the agent started again removes what it ran before anything else; a drained node
// gives its replicas away and ends cordoned; a deleted deployment leaves nothing on the engine.

const ADMIN = 'e2e-fleet-deploy-admin-token-0123'

interface NodeView {
  id: string
  name: string
  status: string
  /** Null until the node's first heartbeat says what it offers. */
  allocatable: { milliCpus: number } | null
}

describe('fleet deployments end to end (berth serve + two agents on one engine)', {
  timeout: 180_000,
}, () => {
  let engine: DockerEngine
  let docker: Docker
  let image: string
  let server: RunningBerth
  let user: SignedIn
  const dirs: string[] = []
  const walletKey = generatePrivateKey()

  before(async () => {
    engine = await ensureDockerEngine()
    image = await buildTestImage(engine.socketPath)
    docker = new Docker({ socketPath: engine.socketPath })
    server = await startBerthOnPostgres({
      env: {
        BERTH_ADMIN_TOKEN: ADMIN,
        BERTH_FLEET__OPEN: 'true',
        BERTH_FLEET__HEARTBEAT_SECONDS: '1',
        BERTH_FLEET__LOSS_GRACE_SECONDS: '1',
        BERTH_FLEET__RESCHEDULE_DELAY_SECONDS: '1',
        // New nodes have no uptime history to prove themselves with.
        BERTH_FLEET__MIN_UPTIME_PERCENT: '0',
        // The agents publish on loopback: the control plane may probe there (a real fleet's may not).
        BERTH_OUTBOUND__ALLOW: '127.0.0.1/32',
      },
    })
    user = await signIn(server.url)
  })

  after(async () => {
    killAgents()
    await server?.stop()
    // What a killed agent left on the engine, and the agents' networks and volumes.
    if (docker) {
      const mine = (value: string | undefined) => value?.startsWith('node-') === true
      for (const c of await docker.listContainers({ all: true, filters: { label: [LABEL.managed] } })) {
        if (mine(c.Labels[LABEL.managed])) await docker.getContainer(c.Id).remove({ force: true, v: true })
      }
      for (const n of await docker.listNetworks({ filters: { label: [LABEL.managed] } })) {
        if (mine(n.Labels?.[LABEL.managed]))
          await docker
            .getNetwork(n.Id)
            .remove()
            .catch(() => {})
      }
    }
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
    await engine?.stop()
  })

  const admin = async (method: string, path: string) => {
    const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}` } })
    return res.status === 204 ? undefined : await res.json()
  }
  const nodes = async () => (await admin('GET', '/v1/nodes')).items as NodeView[]
  /** Running containers of the deployment on the engine, per node. */
  const runningOn = async (deploymentId: string) => {
    const listed = await docker.listContainers({
      filters: { label: [`${LABEL.deployment}=${deploymentId}`], status: ['running'] },
    })
    const byNode = new Map<string, number>()
    for (const c of listed) {
      const node = c.Labels[LABEL.managed]!.replace(/^node-/, '')
      byNode.set(node, (byNode.get(node) ?? 0) + 1)
    }
    return byNode
  }
  const containersOfNode = async (nodeId: string) =>
    docker.listContainers({ all: true, filters: { label: [`${LABEL.managed}=node-${nodeId}`] } })

  const startAgent = (dataDir: string, name: string) =>
    startAgentProcess(server.url, dataDir, ['--name', name], {
      BERTH_PRIVATE_KEY: walletKey,
      DOCKER_HOST: `unix://${engine.socketPath}`,
    })

  it('spreads replicas, moves a lost node’s replica, cleans a returning node, drains and deletes', async () => {
    const dirA = mkdtempSync(join(tmpdir(), 'berth-agent-a-'))
    const dirB = mkdtempSync(join(tmpdir(), 'berth-agent-b-'))
    dirs.push(dirA, dirB)
    const a = startAgent(dirA, 'alpha')
    const b = startAgent(dirB, 'beta')
    let deploymentId: string | undefined
    const explain = async (error: unknown): Promise<never> => {
      const events = deploymentId
        ? (await api(server.url, user.token).get(`/v1/deployments/${deploymentId}/events?limit=200`)).body
        : undefined
      throw new Error(
        `${(error as Error).message}\nevents: ${JSON.stringify(events)}\nagent a:\n${a.output()}\nagent b:\n${b.output()}\nserver:\n${server.output()}`,
      )
    }
    // Heard from, not only enrolled: a node takes replicas once a heartbeat said what it offers.
    const online = await waitFor('both agents online', async () => {
      const list = await nodes()
      return list.filter((n) => n.status === 'online' && n.allocatable !== null).length === 2 && list
    }).catch(explain)
    const alpha = online.find((n) => n.name === 'alpha')!
    const beta = online.find((n) => n.name === 'beta')!

    const client = api(server.url, user.token)
    const created = await client.post<{ id: string }>('/v1/deployments', {
      name: 'web',
      image,
      command: ['sh', '-c', 'echo serving on 8080; exec httpd -f -p 8080'],
      ports: [{ containerPort: 8080 }],
      healthCheck: { type: 'tcp', port: 8080, intervalSeconds: 1 },
      replicas: 2,
      resources: { cpus: 0.1, memoryMb: 32, diskMb: 10 },
      provider: 'fleet',
    })
    assert.equal(created.status, 202, JSON.stringify(created.body))
    const id = created.body.id
    deploymentId = id
    const status = async () =>
      (await client.get<{ status: string; endpoints: Array<{ url: string }> }>(`/v1/deployments/${id}`)).body
    await waitFor('running on the fleet', async () => (await status()).status === 'running', 60_000).catch(
      explain,
    )
    // One replica per node: the scheduler spreads a deployment's replicas.
    assert.deepEqual(Object.fromEntries(await runningOn(id)), { [alpha.id]: 1, [beta.id]: 1 })
    const events = (
      await client.get<{ items: Array<{ type: string; message?: string }> }>(
        `/v1/deployments/${id}/events?limit=100`,
      )
    ).body.items
    const scheduled = events.find((e) => e.type === 'scheduled')
    assert.ok(
      scheduled?.message?.includes(alpha.id) && scheduled.message.includes(beta.id),
      scheduled?.message,
    )
    // The endpoints answer: the agents published the ports and reported where.
    // (busybox httpd with nothing to serve answers 404: an answer from the replica all the same.)
    for (const endpoint of (await status()).endpoints) assert.equal((await fetch(endpoint.url)).status, 404)

    // Its log comes from both nodes, through the agents.
    const logs = await fetch(`${server.url}/v1/deployments/${id}/logs?tail=10`, {
      headers: { authorization: `Bearer ${user.token}` },
    })
    assert.equal(logs.status, 200)
    assert.equal((await logs.text()).match(/stdout serving on 8080/g)?.length, 2)

    // alpha's agent dies: its node is lost, and its replica runs on beta.
    a.child.kill('SIGKILL')
    await a.exited
    await waitFor('alpha lost', async () => (await nodes()).find((n) => n.id === alpha.id)?.status === 'lost')
    await waitFor(
      'both replicas on beta',
      async () => (await runningOn(id)).get(beta.id) === 2 && (await status()).status === 'running',
      60_000,
    ).catch(explain)
    // What the dead agent ran is still there: nobody could remove it.
    assert.equal((await containersOfNode(alpha.id)).length, 1)

    // alpha comes back: it removes what is no longer its own before anything else.
    const again = startAgent(dirA, 'alpha')
    await waitFor('alpha cleaned', async () => (await containersOfNode(alpha.id)).length === 0, 30_000).catch(
      explain,
    )
    await waitFor(
      'alpha online',
      async () => (await nodes()).find((n) => n.id === alpha.id)?.status === 'online',
    )

    // Draining beta moves its replicas to alpha, then beta is cordoned.
    await admin('POST', `/v1/nodes/${beta.id}/drain`)
    await waitFor(
      'beta drained',
      async () => (await nodes()).find((n) => n.id === beta.id)?.status === 'cordoned',
      60_000,
    ).catch(explain)
    await waitFor(
      'both replicas on alpha',
      async () => (await runningOn(id)).get(alpha.id) === 2 && (await status()).status === 'running',
      60_000,
    ).catch(explain)
    await waitFor('beta emptied', async () => (await containersOfNode(beta.id)).length === 0)

    // Stopped: the containers stay on alpha, stopped; started again, the same ones run again.
    const before = (await containersOfNode(alpha.id)).map((c) => c.Id).sort()
    assert.equal((await client.post(`/v1/deployments/${id}/stop`)).status, 202)
    // (busybox httpd as PID 1 ignores SIGTERM: each container stops at the 10 s grace's end.)
    await waitFor(
      'stopped',
      async () => (await status()).status === 'stopped' && (await runningOn(id)).size === 0,
      60_000,
    ).catch(explain)
    assert.deepEqual((await containersOfNode(alpha.id)).map((c) => c.Id).sort(), before)
    assert.equal((await client.post(`/v1/deployments/${id}/start`)).status, 202)
    await waitFor(
      'running again on alpha',
      async () => (await runningOn(id)).get(alpha.id) === 2 && (await status()).status === 'running',
      60_000,
    ).catch(explain)
    assert.deepEqual((await containersOfNode(alpha.id)).map((c) => c.Id).sort(), before)

    // Deleted: nothing of it is left on any node.
    assert.equal((await client.del(`/v1/deployments/${id}`)).status, 202)
    await waitFor(
      'nothing left',
      async () => (await runningOn(id)).size === 0 && (await containersOfNode(alpha.id)).length === 0,
    )

    again.child.kill('SIGTERM')
    b.child.kill('SIGTERM')
    await Promise.all([again.exited, b.exited])
  })
})
