import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { killAgents, startAgentProcess } from './helpers/agent-process.ts'
import { berthBin, type RunningBerth, repoRoot, startBerthOnPostgres } from './helpers/server.ts'
import { waitFor } from './helpers/wait.ts'

// The fleet with real processes: a control plane on PostgreSQL and `berth agent` processes that
// enroll with a wallet key and a join token and send signed heartbeats every second. A killed
// agent's node is lost within its budget (three intervals plus the grace) and a second; the same
// data dir started again is the same node, online again.

const ADMIN = 'e2e-fleet-admin-token-0123456789'
const HEARTBEAT_SECONDS = 1
const GRACE_SECONDS = 1

interface NodeView {
  id: string
  name: string
  status: string
  operator: string
  labels: Record<string, string>
  lostAt: string | null
}

describe('fleet end to end (berth serve + berth agent processes)', { timeout: 120_000 }, () => {
  let server: RunningBerth
  const dirs: string[] = []
  const walletKey = generatePrivateKey()

  before(async () => {
    server = await startBerthOnPostgres({
      env: {
        BERTH_ADMIN_TOKEN: ADMIN,
        BERTH_FLEET__HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS),
        BERTH_FLEET__LOSS_GRACE_SECONDS: String(GRACE_SECONDS),
      },
    })
  })
  after(async () => {
    killAgents()
    await server?.stop()
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    })
    return { status: res.status, body: res.status === 204 ? undefined : await res.json() }
  }
  const nodes = async () => (await admin('GET', '/v1/nodes')).body.items as NodeView[]

  const startAgent = (dataDir: string, args: string[], withWallet = true) =>
    startAgentProcess(server.url, dataDir, args, withWallet ? { BERTH_PRIVATE_KEY: walletKey } : {})

  it('enrolls agents, finds a killed one lost within its budget, and knows it again when it returns', async () => {
    const { body: issued } = await admin('POST', '/v1/admin/fleet/join-tokens', { maxUses: 2 })
    const dirA = mkdtempSync(join(tmpdir(), 'berth-agent-a-'))
    const dirB = mkdtempSync(join(tmpdir(), 'berth-agent-b-'))
    dirs.push(dirA, dirB)
    const a = startAgent(dirA, ['--join-token', issued.token, '--name', 'alpha', '--label', 'region=eu'])
    startAgent(dirB, ['--join-token', issued.token, '--name', 'beta', '--label', 'region=us'])

    const online = await waitFor(
      'both agents online',
      async () => {
        const list = await nodes()
        return list.filter((n) => n.status === 'online').length === 2 && list
      },
      30_000,
    ).catch((error) => {
      throw new Error(`${(error as Error).message}\nagent a:\n${a.output()}\nserver:\n${server.output()}`)
    })
    const alpha = online.find((n) => n.name === 'alpha')!
    assert.equal(alpha.operator, privateKeyToAccount(walletKey).address.toLowerCase())
    assert.deepEqual(alpha.labels, { region: 'eu' })
    // The agent's key is its identity: kept where only its owner can read it.
    assert.equal(statSync(join(dirA, 'agent-key.pem')).mode & 0o777, 0o600)
    assert.equal(JSON.parse(readFileSync(join(dirA, 'node.json'), 'utf8')).nodeId, alpha.id)

    // The operator's CLI: every node with its uptime, and cordoning one.
    const cli = (...args: string[]) =>
      execFileSync(process.execPath, [berthBin, ...args, '--server', server.url], {
        cwd: repoRoot,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', BERTH_TOKEN: ADMIN, HOME: dirA },
        encoding: 'utf8',
      })
    const table = cli('nodes', '--all')
    assert.match(table, /^ID\s+NAME\s+STATUS\s+UP 24H\s+UP 7D\s+UP 30D\s+CPUS\s+MEMORY\s+SEEN\s+LABELS$/m)
    assert.match(
      table,
      new RegExp(`^${alpha.id.slice(0, 8)}\\s+alpha\\s+online\\s+\\d+\\.\\d\\d%.*region=eu$`, 'm'),
    )
    assert.match(cli('nodes', 'cordon', alpha.id), /alpha \(.*\) is cordoned/)
    assert.equal(JSON.parse(cli('nodes', 'get', alpha.id, '--json')).status, 'cordoned')
    cli('nodes', 'uncordon', alpha.id)

    a.child.kill('SIGKILL')
    await a.exited
    const killedAt = Date.now()
    const lost = await waitFor(
      'alpha lost',
      async () => (await nodes()).find((n) => n.id === alpha.id && n.status === 'lost'),
      30_000,
      50,
    )
    // The time the sweep decided, as berth records and shows it: this test's own polling and
    // requests, slow on a busy machine, are no part of how long berth took.
    const budgetMs = (3 * HEARTBEAT_SECONDS + GRACE_SECONDS) * 1000
    const tookMs = Date.parse(lost.lostAt!) - killedAt
    assert.ok(tookMs <= budgetMs + 1000, `lost after ${tookMs} ms (budget ${budgetMs} ms + 1 s)`)
    assert.match(cli('nodes', 'get', alpha.id), new RegExp(`last found lost: ${lost.lostAt}`))
    assert.equal(
      (await nodes()).find((n) => n.name === 'beta')!.status,
      'online',
      'the other node stays online',
    )

    // Started again on the same data dir, without the wallet key: the same node.
    const again = startAgent(dirA, [], false)
    await waitFor(
      'alpha online again',
      async () => (await nodes()).find((n) => n.id === alpha.id)?.status === 'online',
      30_000,
    )
    assert.equal((await nodes()).length, 2, 'no new node for the same data dir')
    // It resumes as its saved node, with its own key: the wallet key is needed only to enroll.
    assert.match(again.output(), new RegExp(`resuming as node ${alpha.id}`))

    again.child.kill('SIGTERM')
    await again.exited
    assert.equal(again.child.exitCode, 0, again.output())
  })
})
