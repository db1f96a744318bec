import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { children, createUser } from './helpers/cli-user.ts'
import { type RunningBerth, startBerth } from './helpers/server.ts'

// The real `berth` CLI process against a real `berth serve`, as a user would run them.

interface Deployment {
  id: string
  name: string
  status: string
  provider: string
  spec: Record<string, unknown>
  progress: { stage: string; percent: number }
  endpoints: unknown[]
}
interface Event {
  seq: number
  type: string
  status?: string
  stage?: string
}

const stages = ['queued', 'scheduling', 'pulling', 'creating', 'starting', 'health-checking', 'running']

/** Collects a running process's output; `until` resolves once stdout satisfies a condition. */
function watchOutput(child: ChildProcess) {
  let stdout = ''
  let stderr = ''
  const waiters = new Set<() => void>()
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
    for (const wake of waiters) wake()
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const until = (done: (stdout: string) => boolean, timeoutMs = 20_000) =>
    new Promise<string>((resolve, reject) => {
      const finish = (error?: Error) => {
        clearTimeout(timer)
        waiters.delete(check)
        child.off('exit', onExit)
        if (error) reject(error)
        else resolve(stdout)
      }
      const check = () => {
        if (done(stdout)) finish()
      }
      const onExit = (code: number | null) =>
        finish(new Error(`exited with ${code} first; stdout:\n${stdout}\nstderr:\n${stderr}`))
      const timer = setTimeout(
        () => finish(new Error(`timed out; stdout:\n${stdout}\nstderr:\n${stderr}`)),
        timeoutMs,
      )
      waiters.add(check)
      child.once('exit', onExit)
      check()
    })
  return { until }
}

let server!: RunningBerth

const expectCode = (result: { code: number | null; stdout: string; stderr: string }, code: number) =>
  assert.equal(
    result.code,
    code,
    `exit ${result.code}, wanted ${code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}` +
      `\nserver output (tail):\n${server?.output().slice(-3000)}`,
  )

describe('berth CLI end to end', { timeout: 180_000 }, () => {
  const privateKey = generatePrivateKey()
  const address = privateKeyToAccount(privateKey).address.toLowerCase()
  const user = createUser({ BERTH_PRIVATE_KEY: privateKey })
  let webId = ''

  before(async () => {
    server = await startBerth()
  })
  after(async () => {
    for (const child of children) child.kill('SIGKILL')
    await server?.stop()
  })

  it('logs in with the wallet key and remembers the server, in a file only the user can read', async () => {
    const login = await user.run(['login', '--server', server.url])
    expectCode(login, 0)
    assert.match(login.stdout.toLowerCase(), new RegExp(`logged in to ${server.url} as ${address}`))
    const file = join(user.configDir, 'credentials.json')
    assert.equal(statSync(file).mode & 0o777, 0o600)
    const saved = JSON.parse(readFileSync(file, 'utf8'))
    assert.equal(saved.current, server.url)
    assert.equal(saved.servers[server.url].address.toLowerCase(), address)

    // No --server from here on: the login's server is the default.
    const whoami = await user.run(['whoami', '--json'])
    expectCode(whoami, 0)
    assert.equal(JSON.parse(whoami.stdout).address.toLowerCase(), address)
  })

  it('deploys and shows the stages live until running', async () => {
    const result = await user.run([
      'deploy',
      '--name',
      'web',
      '--image',
      'busybox:1.36',
      '--port',
      '8080',
      '--env',
      'A=1',
    ])
    expectCode(result, 0)
    // Not a terminal: one plain line per stage, in lifecycle order.
    const shown = [...result.stdout.matchAll(/^\[\s*(\d+)%\] (\S+)$/gm)].map((m) => m[2])
    assert.deepEqual(shown, stages)
    assert.match(result.stdout, /^web is running \(([0-9a-f-]{36})\)$/m)
    webId = /web is running \(([0-9a-f-]{36})\)/.exec(result.stdout)![1]!
  })

  it('lists, and gets by name or short id', async () => {
    const ls = await user.run(['ls', '--json'])
    expectCode(ls, 0)
    const page = JSON.parse(ls.stdout) as { items: Deployment[]; total: number }
    const web = page.items.find((d) => d.name === 'web')
    assert.equal(web?.id, webId)
    assert.equal(web?.status, 'running')
    assert.equal(web?.provider, 'simulated')

    const table = await user.run(['ls'])
    expectCode(table, 0)
    const [header, ...rows] = table.stdout.trimEnd().split('\n')
    assert.match(header!, /^ID\s+NAME\s+STATUS\s+STAGE%\s+PROVIDER\s+AGE$/)
    assert.ok(
      rows.some((row) =>
        new RegExp(`^${webId.slice(0, 8)}\\s+web\\s+running\\s+100%\\s+simulated\\s+\\d+[smhd]$`).test(row),
      ),
    )

    const get = await user.run(['get', 'web'])
    expectCode(get, 0)
    assert.match(get.stdout, new RegExp(`^ID:\\s+${webId}$`, 'm'))
    assert.match(get.stdout, /^Status:\s+running$/m)
    assert.match(get.stdout, /^Image:\s+busybox:1\.36$/m)
    assert.match(get.stdout, /^Endpoints:/m)

    const byShortId = await user.run(['get', webId.slice(0, 8), '--json'])
    expectCode(byShortId, 0)
    const d = JSON.parse(byShortId.stdout) as Deployment
    assert.equal(d.id, webId)
    assert.deepEqual(d.spec.ports, [{ containerPort: 8080, protocol: 'tcp' }])
    assert.deepEqual(d.spec.env, { A: '1' })
  })

  it('shows the account quota with what the deployment uses of it', async () => {
    const table = await user.run(['quota'])
    expectCode(table, 0)
    const rows = table.stdout
      .trimEnd()
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
    assert.deepEqual(rows[0], ['QUOTA', 'USED', 'LIMIT'])
    assert.deepEqual(
      rows.find((row) => row[0] === 'deployments'),
      ['deployments', '1', '50'],
    )
    assert.deepEqual(
      rows.find((row) => row[0] === 'hostPorts'),
      ['hostPorts', '1', '100'],
    )
  })

  it('shows the events with the stages in order', async () => {
    const events = await user.run(['events', 'web', '--json'])
    expectCode(events, 0)
    const items = (JSON.parse(events.stdout) as { items: Event[] }).items
    assert.deepEqual(
      items.map((e) => e.seq),
      items.map((_, i) => i + 1),
    )
    assert.deepEqual([...new Set(items.flatMap((e) => (e.stage ? [e.stage] : [])))], stages)
    assert.equal(items.at(-1)?.status, 'running')

    const human = await user.run(['events', 'web'])
    expectCode(human, 0)
    assert.equal(human.stdout.trimEnd().split('\n').length, items.length)
  })

  it('prints logs', async () => {
    const logs = await user.run(['logs', 'web', '--tail', '10'])
    expectCode(logs, 0)
    const lines = logs.stdout.trimEnd().split('\n')
    assert.ok(lines.length >= 1 && lines.length <= 10, logs.stdout)
    for (const line of lines) assert.match(line, /^\d{4}-\d\d-\d\dT[\d:.]+Z (stdout|stderr) /)
  })

  it('follows events live while another command stops the deployment', async () => {
    const follower = user.spawnCli(['events', 'web', '-f', '--json'])
    const output = watchOutput(follower)
    try {
      // The history arrives first; then the stop must show up on the same stream.
      await output.until((out) => out.includes('"status":"running"'))
      expectCode(await user.run(['stop', 'web']), 0)
      const out = await output.until((out) => out.includes('"status":"stopped"'))
      const lines = out
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as Event)
      const statuses = lines.flatMap((e) => (e.status ? [e.status] : []))
      assert.deepEqual(statuses.slice(-2), ['stopping', 'stopped'])
      assert.deepEqual(
        lines.map((e) => e.seq),
        lines.map((_, i) => i + 1),
        'every event once, in order',
      )
    } finally {
      follower.kill()
    }
    const get = await user.run(['get', 'web', '--json'])
    assert.equal((JSON.parse(get.stdout) as Deployment).status, 'stopped')
  })

  it('starts, restarts and stops, waiting for each to finish', async () => {
    const start = await user.run(['start', 'web', '--wait', '--json'])
    expectCode(start, 0)
    assert.equal((JSON.parse(start.stdout) as Deployment).status, 'running')

    const restart = await user.run(['restart', 'web', '--wait'])
    expectCode(restart, 0)
    assert.match(restart.stdout, /^web is running$/m)
    const events = JSON.parse((await user.run(['events', 'web', '--json'])).stdout) as { items: Event[] }
    const statuses = events.items.flatMap((e) => (e.status ? [e.status] : []))
    assert.deepEqual(statuses.slice(-2), ['starting', 'running'], 'the restart went through starting again')

    const stop = await user.run(['stop', 'web', '-w'])
    expectCode(stop, 0)
    assert.match(stop.stdout, /^stopped$/m)
    assert.match(stop.stdout, /^web is stopped$/m)
  })

  it('deletes, after which the deployment is not found (exit 3)', async () => {
    const rm = await user.run(['rm', 'web', '--wait'])
    expectCode(rm, 0)
    assert.match(rm.stdout, /^web is deleted$/m)
    const get = await user.run(['get', 'web'])
    expectCode(get, 3)
    assert.equal(get.stderr, 'error: deployment "web" not found\n')
    const ls = JSON.parse((await user.run(['ls', '--json'])).stdout) as { items: Deployment[] }
    assert.ok(!ls.items.some((d) => d.id === webId))
  })

  it('deploys from a YAML file with flags overriding it, printing the final JSON', async () => {
    const file = join(user.home, 'api.yaml')
    writeFileSync(file, 'name: from-file\nimage: busybox:1.36\nreplicas: 2\nenv:\n  A: file\n  B: file\n')
    const result = await user.run(['deploy', '--file', file, '--name', 'api', '--env', 'B=flag', '--json'])
    expectCode(result, 0)
    const d = JSON.parse(result.stdout) as Deployment
    assert.equal(d.name, 'api')
    assert.equal(d.status, 'running')
    assert.equal(d.spec.replicas, 2)
    assert.deepEqual(d.spec.env, { A: 'file', B: 'flag' })

    const again = await user.run(['deploy', '--name', 'api', '--image', 'busybox:1.36', '--detach'])
    expectCode(again, 3)
    assert.match(again.stderr, /^error: .*already exists/m)
  })

  it('exits 2 for bad flags and for specs the server refuses, naming the problem', async () => {
    const unknownFlag = await user.run(['deploy', '--name', 'x', '--image', 'busybox', '--bogus'])
    expectCode(unknownFlag, 2)
    assert.match(unknownFlag.stderr, /unknown option '--bogus'/)

    const badPort = await user.run(['deploy', '--name', 'x', '--image', 'busybox', '--port', 'http'])
    expectCode(badPort, 2)
    assert.match(badPort.stderr, /--port http/)

    const noImage = await user.run(['deploy', '--name', 'x'])
    expectCode(noImage, 2)

    const badName = await user.run(['deploy', '--name', 'Not_A_Label', '--image', 'busybox'])
    expectCode(badName, 2)
    assert.match(badName.stderr, /name: must be a DNS label/)

    const badProvider = await user.run([
      'deploy',
      '--name',
      'x',
      '--image',
      'busybox',
      '--provider',
      'nope',
      '--json',
    ])
    expectCode(badProvider, 2)
    const body = JSON.parse(badProvider.stderr) as { error: { code: string; requestId: string } }
    assert.equal(body.error.code, 'invalid_input')
    assert.ok(body.error.requestId)
    assert.equal(badProvider.stdout, '')
  })

  it('exits 3 for unknown deployments', async () => {
    for (const args of [
      ['get', '00000000-0000-4000-8000-000000000000'],
      ['get', 'no-such-thing'],
      ['stop', 'no-such-thing'],
      ['logs', 'no-such-thing'],
      ['events', 'no-such-thing', '-f'],
    ]) {
      expectCode(await user.run(args), 3)
    }
  })

  it('exits 4 when not logged in, with a rejected token, and after logout', async () => {
    const stranger = createUser()
    const notLoggedIn = await stranger.run(['ls', '--server', server.url])
    expectCode(notLoggedIn, 4)
    assert.match(notLoggedIn.stderr, /^error: not logged in to .*berth login/)

    const badToken = await stranger.run(['ls', '--server', server.url, '--json'], {
      BERTH_TOKEN: 'not-a-token',
    })
    expectCode(badToken, 4)
    assert.equal((JSON.parse(badToken.stderr) as { error: { code: string } }).error.code, 'unauthorized')

    const noKey = await stranger.run(['login', '--server', server.url])
    expectCode(noKey, 2)
    assert.match(noKey.stderr, /BERTH_PRIVATE_KEY/)

    const token = (
      JSON.parse(readFileSync(join(user.configDir, 'credentials.json'), 'utf8')) as {
        servers: Record<string, { token: string }>
      }
    ).servers[server.url]!.token
    expectCode(await user.run(['logout']), 0)
    expectCode(await user.run(['ls']), 4)
    // The session ended on the server too, not only in the file.
    expectCode(await stranger.run(['ls', '--server', server.url], { BERTH_TOKEN: token }), 4)
  })
})
