import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { createTestApp, type TestApp } from './helpers/http-app.ts'
import { repoRoot } from './helpers/server.ts'
import { createStack, type Stack } from './helpers/stack.ts'

// The agent install script as berth serves it, run for real in a throwaway root: npm installs
// berth (this checkout, offline) and the script writes the agent's systemd unit and environment.

describe('agent install script', { timeout: 120_000 }, () => {
  let database: TestDatabase
  let stack: Stack
  let app: TestApp
  const root = mkdtempSync(join(tmpdir(), 'berth-install-root-'))

  before(async () => {
    database = await openTestDatabase('pglite')
    stack = await createStack(database, {
      flags: { publicUrl: 'https://berth.example', fleet: { agentPackage: '@acme/berth@1.2.3' } },
    })
    app = await createTestApp(database, stack)
  })
  after(async () => {
    await stack.stop()
    await database.dispose()
    rmSync(root, { recursive: true, force: true })
  })

  const served = async () => {
    const res = await app.fetch('/v1/fleet/install.sh', { method: 'GET' })
    assert.equal(res.status, 200, 'served without a token')
    assert.match(res.headers.get('content-type') ?? '', /text\/x-shellscript/)
    return res.text()
  }
  const run = (script: string, env: Record<string, string>) => {
    const file = join(root, 'install.sh')
    writeFileSync(file, script)
    return spawnSync('sh', [file], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: root,
        // npm stays off the network: the package is this checkout, and no update check.
        NPM_CONFIG_UPDATE_NOTIFIER: 'false',
        ...env,
      },
      encoding: 'utf8',
    })
  }

  it("defaults to this server and the operator's agent package", async () => {
    const script = await served()
    assert.match(script, /^#!\/bin\/sh\n/)
    assert.match(script, /server="\$\{BERTH_SERVER:-https:\/\/berth\.example\}"/)
    assert.match(script, /package="\$\{BERTH_PACKAGE:-@acme\/berth@1\.2\.3\}"/)
    assert.equal(
      script,
      readFileSync(join(repoRoot, 'deploy/install-agent.sh'), 'utf8')
        .replace('@BERTH_SERVER@', 'https://berth.example')
        .replace('@BERTH_PACKAGE@', '@acme/berth@1.2.3'),
      'the committed script, with the two defaults filled in',
    )
  })

  it('installs berth and the agent unit into a throwaway root', async () => {
    const result = run(await served(), {
      BERTH_ROOT: root,
      BERTH_PACKAGE: repoRoot,
      BERTH_NPM_FLAGS: '--offline',
      BERTH_JOIN_TOKEN: 'bjt_install-test',
      BERTH_NODE_NAME: 'rack7-a',
      BERTH_LABELS: 'region=eu-west gpu=a100',
    })
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`)
    assert.match(result.stdout, /nothing started/)
    const unit = readFileSync(join(root, 'etc/systemd/system/berth-agent.service'), 'utf8')
    assert.match(
      unit,
      /^ExecStart=\/opt\/berth\/node_modules\/\.bin\/berth agent --data-dir \/var\/lib\/berth-agent --key-file \/etc\/berth\/wallet\.key --name rack7-a --label region=eu-west --label gpu=a100$/m,
    )
    assert.match(unit, /^EnvironmentFile=\/etc\/berth\/agent\.env$/m)
    const envFile = join(root, 'etc/berth/agent.env')
    assert.equal(statSync(envFile).mode & 0o777, 0o600, 'the join token is readable by root only')
    assert.equal(
      readFileSync(envFile, 'utf8'),
      'BERTH_SERVER=https://berth.example\nBERTH_JOIN_TOKEN=bjt_install-test\n',
    )
    const version = execFileSync(join(root, 'opt/berth/node_modules/.bin/berth'), ['--version'], {
      encoding: 'utf8',
    })
    assert.equal(version.trim(), JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version)
  })

  it('stops with a clear message when it does not know what to install', async () => {
    const bare = (await served()).replace('@acme/berth@1.2.3}', '}')
    const result = run(bare, { BERTH_ROOT: root })
    assert.notEqual(result.status, 0)
    assert.match(result.stderr, /set BERTH_PACKAGE to the berth package to install/)
  })
})
