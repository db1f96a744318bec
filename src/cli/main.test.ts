import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { Io } from './commands/context.ts'
import { runCli } from './main.ts'

// runCli with injected streams and env: what a user sees for mistakes that never reach a server.

function memoryIo(env: Record<string, string> = {}) {
  const out = { stdout: '', stderr: '' }
  const io: Io = {
    stdout: { write: (text: string) => (out.stdout += text) },
    stderr: { write: (text: string) => (out.stderr += text) },
    env: { HOME: '/nonexistent', XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), 'berth-xdg-')), ...env },
    fetch: () => Promise.reject(new Error('no network in this test')),
    now: () => new Date(),
  }
  return { io, out }
}

describe('runCli', () => {
  it('exits 2 on usage errors, with commander’s message on stderr', async () => {
    for (const argv of [['ls', '--bogus'], ['nope'], ['get'], [], ['logs', 'x', '--tail', 'many']]) {
      const { io, out } = memoryIo()
      assert.equal(await runCli(argv, io), 2, argv.join(' '))
      assert.match(out.stderr, /error|Usage/, argv.join(' '))
    }
  })

  it('exits 2 on a deploy spec it can tell is incomplete, before any request', async () => {
    const { io, out } = memoryIo({ BERTH_TOKEN: 't' })
    assert.equal(await runCli(['deploy', '--name', 'web'], io), 2)
    assert.equal(
      out.stderr,
      'error: a deployment needs an image: pass --image, or set image or services in --file\n',
    )
  })

  it('exits 4 when not logged in, as text or as an error body with --json', async () => {
    const human = memoryIo()
    assert.equal(await runCli(['ls', '--server', 'http://berth.test'], human.io), 4)
    assert.equal(
      human.out.stderr,
      'error: not logged in to http://berth.test: run `berth login` or set BERTH_TOKEN\n',
    )

    const json = memoryIo()
    assert.equal(await runCli(['ls', '--json', '--server', 'http://berth.test'], json.io), 4)
    assert.equal(json.out.stdout, '')
    assert.equal(JSON.parse(json.out.stderr).error.code, 'unauthorized')
  })

  it('exits 2 for login without a key, and for a malformed key', async () => {
    const none = memoryIo()
    assert.equal(await runCli(['login'], none.io), 2)
    assert.match(none.out.stderr, /BERTH_PRIVATE_KEY/)
    const bad = memoryIo({ BERTH_PRIVATE_KEY: '0x1234' })
    assert.equal(await runCli(['login'], bad.io), 2)
    assert.match(bad.out.stderr, /BERTH_PRIVATE_KEY: must be a 32-byte hex private key/)
  })

  it('exits 1 when the server cannot be reached', async () => {
    const { io, out } = memoryIo({ BERTH_TOKEN: 't' })
    assert.equal(await runCli(['ls'], io), 1)
    assert.match(out.stderr, /^error: cannot reach http:\/\/localhost:8080/)
  })

  it('exits 0 for --help and --version', async () => {
    const help = memoryIo()
    assert.equal(await runCli(['deploy', '--help'], help.io), 0)
    assert.match(help.out.stdout, /--idempotency-key/)
    assert.match(help.out.stdout, /--json/)
    const version = memoryIo()
    assert.equal(await runCli(['--version'], version.io), 0)
    assert.match(version.out.stdout, /^\d+\.\d+\.\d+/)
  })
})
