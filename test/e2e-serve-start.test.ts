import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { berthBin, repoRoot, runCli, startBerth } from './helpers/server.ts'
import { waitFor } from './helpers/wait.ts'

// `berth serve` as an operator starts it: a configuration it cannot use ends it at once with exit
// code 2 and a message naming the problem; its log is JSON lines for machines, or one readable
// line per entry when asked (or on a terminal).

describe('berth serve at start (e2e)', () => {
  let dir: string
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-serve-start-'))
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  const serve = (args: string[], env: Record<string, string> = {}, dataDir = join(dir, 'data')) =>
    runCli('http://127.0.0.1:1', ['serve', '--port', '0', '--data-dir', dataDir, ...args], env)

  // A server that accepted what it should refuse would run on: each case is bounded.
  const bounded = { timeout: 90_000 }

  it('exits 2 for a config file it cannot parse, naming the file', bounded, async () => {
    const file = join(dir, 'broken.yaml')
    writeFileSync(file, 'port: [8080\nreconciler: {')
    const result = await serve(['--config', file])
    assert.equal(result.code, 2, result.stderr)
    assert.match(result.stderr, /cannot parse config file .*broken\.yaml/)
  })

  it('exits 2 for a config file with a bad value, naming the key', bounded, async () => {
    const file = join(dir, 'bad-value.yaml')
    writeFileSync(file, 'reconciler:\n  leaseSeconds: forever\n')
    const result = await serve(['--config', file])
    assert.equal(result.code, 2, result.stderr)
    assert.match(result.stderr, /reconciler\.leaseSeconds/)
  })

  it('exits 2 for a config file that is not there', bounded, async () => {
    const result = await serve(['--config', join(dir, 'missing.yaml')])
    assert.equal(result.code, 2, result.stderr)
    assert.match(result.stderr, /cannot read config file/)
  })

  it('exits 2 when the default provider it names is not enabled', bounded, async () => {
    const result = await serve([], {
      BERTH_PROVIDERS__DEFAULT: 'docker',
      BERTH_PROVIDERS__DOCKER__ENABLED: 'false',
    })
    assert.equal(result.code, 2, `${result.stdout}\n${result.stderr}`)
    assert.match(result.stdout, /providers\.default: \\?"docker\\?" is not enabled/)
  })

  it(
    'exits 2 when a configured master key file is missing, instead of making a new key',
    bounded,
    async () => {
      const missing = join(dir, 'no-such.key')
      const result = await serve([], { BERTH_MASTER_KEY_FILE: missing })
      assert.equal(result.code, 2, `${result.stdout}\n${result.stderr}`)
      assert.match(result.stdout, /masterKeyFile: .*no-such\.key does not exist/)
    },
  )

  it('refuses a data dir another live berth holds: serve, migrate and keys rotate', bounded, async () => {
    const shared = join(dir, 'shared')
    const running = await startBerth({ dataDir: shared })
    try {
      const again = await serve([], {}, shared)
      assert.equal(again.code, 2, `${again.stdout}\n${again.stderr}`)
      assert.match(again.stdout, new RegExp(`another berth process \\(pid ${running.child.pid}\\) uses`))
      for (const args of [['migrate'], ['keys', 'rotate']]) {
        const result = await runCli('http://127.0.0.1:1', [...args, '--data-dir', shared])
        assert.equal(result.code, 2, `${args.join(' ')}: ${result.stdout}\n${result.stderr}`)
        assert.match(result.stderr, /another berth process \(pid \d+\) uses/)
      }
    } finally {
      await running.stop()
    }
    // Once it stopped, the directory is free again.
    const rotated = await runCli('http://127.0.0.1:1', ['keys', 'rotate', '--data-dir', shared])
    assert.equal(rotated.code, 0, rotated.stderr)
    assert.match(rotated.stdout, /^rotated: data keys wrapped by v2-/m)
  })

  for (const format of ['json', 'pretty'] as const) {
    it(
      `logs ${format === 'json' ? 'JSON lines' : 'one readable line per entry'} with --log-format ${format}, and stops cleanly`,
      bounded,
      async () => {
        const child = spawn(
          process.execPath,
          [berthBin, 'serve', '--port', '0', '--data-dir', join(dir, 'data'), '--log-format', format],
          {
            cwd: repoRoot,
            env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        )
        let stdout = ''
        let stderr = ''
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString()
        })
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString()
        })
        const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
        try {
          await waitFor('berth is listening', async () => stdout.includes('berth is listening'), 60_000)
        } catch (error) {
          throw new Error(`${(error as Error).message}\nstdout:\n${stdout}\nstderr:\n${stderr}`)
        } finally {
          child.kill('SIGTERM')
        }
        assert.equal(await exited, 0, `${stdout}\n${stderr}`)
        const listening = stdout.split('\n').find((line) => line.includes('berth is listening'))!
        if (format === 'json') {
          assert.equal(JSON.parse(listening).msg, 'berth is listening')
        } else {
          assert.throws(() => JSON.parse(listening))
          assert.match(listening, /INFO.*berth is listening/)
        }
      },
    )
  }
})
