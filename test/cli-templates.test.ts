import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { generatePrivateKey } from 'viem/accounts'
import { children, createUser } from './helpers/cli-user.ts'
import { type RunningBerth, startBerth } from './helpers/server.ts'

// `berth templates`, `berth deploy --template` and `berth credentials`, as a user runs them against
// a real `berth serve` (on its simulated provider).

describe('berth CLI with templates (e2e)', { timeout: 180_000 }, () => {
  let server: RunningBerth
  const user = createUser({ BERTH_PRIVATE_KEY: generatePrivateKey() })

  before(async () => {
    server = await startBerth()
    const login = await user.run(['login', '--server', server.url])
    assert.equal(login.code, 0, login.stderr)
  })
  after(async () => {
    for (const child of children) child.kill('SIGKILL')
    await server?.stop()
  })

  it('lists the catalog with prices, and shows a template with its parameters', async () => {
    const list = await user.run(['templates'])
    assert.equal(list.code, 0, list.stderr)
    assert.match(list.stdout, /^postgres\s+small\s+2\s+4096 MB\s+10240 MB\s+\$\d+\.\d{6}\/month$/m)
    assert.match(list.stdout, /^postgres\s+medium\s+4\s+16384 MB\s+51200 MB/m)
    const one = await user.run(['templates', 'postgres'])
    assert.equal(one.code, 0, one.stderr)
    assert.match(one.stdout, /user \(string, default "app"\)/)
    assert.match(one.stdout, /Credentials \(berth credentials <deployment>\): password/)
  })

  it('deploys a template, follows it to running, and shows its credentials when asked', async () => {
    const deployed = await user.run([
      'deploy',
      '--template',
      'postgres',
      '--size',
      'small',
      '--name',
      'orders-db',
      '--param',
      'user=orders',
    ])
    assert.equal(deployed.code, 0, deployed.stderr)
    assert.match(deployed.stdout, /orders-db is running/)
    assert.match(deployed.stdout, /credentials: berth credentials orders-db/)
    const read = await user.run(['credentials', 'orders-db', '--json'])
    assert.equal(read.code, 0, read.stderr)
    const { credentials } = JSON.parse(read.stdout)
    assert.match(credentials.password, /^[A-Za-z0-9]{32}$/)
    const shown = await user.run(['get', 'orders-db'])
    assert.ok(!shown.stdout.includes(credentials.password))
    const rotated = await user.run(['credentials', 'orders-db', '--rotate'])
    assert.equal(rotated.code, 0, rotated.stderr)
    const fresh = /^password: ([A-Za-z0-9]{32})$/m.exec(rotated.stdout)?.[1]
    assert.ok(fresh && fresh !== credentials.password, rotated.stdout)
  })

  it('refuses a bad parameter or size with exit 2, naming it', async () => {
    const badParam = await user.run([
      'deploy',
      '--template',
      'postgres',
      '--size',
      'small',
      '--param',
      'user=Bad-Name',
    ])
    assert.equal(badParam.code, 2)
    assert.match(badParam.stderr, /params\.user: must match/)
    const badSize = await user.run(['deploy', '--template', 'postgres', '--size', 'huge'])
    assert.equal(badSize.code, 2)
    assert.match(badSize.stderr, /no size "huge"; sizes: small, medium/)
  })
})
