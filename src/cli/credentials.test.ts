import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { loadClientConfig } from '../config/client-config.ts'
import { BerthError } from '../domain/errors.ts'
import { createCredentialStore, normalizeServer } from './credentials.ts'

const key = `0x${'ab'.repeat(32)}`

describe('client config', () => {
  it('reads the key, token, server and config dir from the env it is given', () => {
    const config = loadClientConfig({
      BERTH_PRIVATE_KEY: key,
      BERTH_TOKEN: 'berth_abc',
      BERTH_SERVER: 'http://example.test:9000',
      XDG_CONFIG_HOME: '/x/config',
      HOME: '/home/u',
    })
    assert.deepEqual(config, {
      privateKey: key,
      token: 'berth_abc',
      server: 'http://example.test:9000',
      configDir: '/x/config/berth',
    })
    assert.equal(loadClientConfig({ HOME: '/home/u' }).configDir, '/home/u/.config/berth')
    assert.equal(loadClientConfig({ HOME: '/h', BERTH_PRIVATE_KEY: 'ab'.repeat(32) }).privateKey, key)
  })

  it('reads secrets from *_FILE', () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-cfg-'))
    writeFileSync(join(dir, 'key'), `${key}\n`)
    assert.equal(loadClientConfig({ HOME: dir, BERTH_PRIVATE_KEY_FILE: join(dir, 'key') }).privateKey, key)
  })

  it('names a bad variable without echoing its value', () => {
    assert.throws(
      () => loadClientConfig({ HOME: '/h', BERTH_PRIVATE_KEY: '0xdeadbeef-secret' }),
      (error: unknown) =>
        error instanceof BerthError &&
        error.code === 'invalid_input' &&
        error.message.includes('BERTH_PRIVATE_KEY') &&
        !error.message.includes('deadbeef'),
    )
  })
})

describe('credentials file', () => {
  it('round-trips sessions per server with mode 0600, remembering the latest login', () => {
    const xdg = mkdtempSync(join(tmpdir(), 'berth-xdg-'))
    const { configDir } = loadClientConfig({ XDG_CONFIG_HOME: xdg, HOME: '/nonexistent' })
    const store = createCredentialStore(configDir)
    assert.equal(store.get('http://a.test:1'), undefined)
    assert.equal(store.currentServer(), undefined)

    const a = {
      server: 'http://a.test:1/',
      token: 'ta',
      address: '0xA',
      expiresAt: '2030-01-01T00:00:00.000Z',
    }
    const b = { server: 'https://b.test', token: 'tb', address: '0xB', expiresAt: '2031-01-01T00:00:00.000Z' }
    store.save(a)
    store.save(b)

    assert.equal(store.path, join(xdg, 'berth', 'credentials.json'))
    assert.equal(statSync(store.path).mode & 0o777, 0o600)
    // A second store over the same directory sees what the first wrote: it is on disk.
    const again = createCredentialStore(configDir)
    assert.deepEqual(again.get('http://a.test:1'), { ...a, server: 'http://a.test:1' })
    assert.deepEqual(again.get('https://b.test/'), b)
    assert.equal(again.currentServer(), 'https://b.test')

    assert.equal(again.remove('https://b.test'), true)
    assert.equal(again.remove('https://b.test'), false)
    assert.equal(again.currentServer(), 'http://a.test:1')
    assert.equal(JSON.parse(readFileSync(store.path, 'utf8')).servers['https://b.test'], undefined)
    assert.equal(statSync(store.path).mode & 0o777, 0o600)
  })

  it('reports a damaged file instead of overwriting it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-xdg-'))
    writeFileSync(join(dir, 'credentials.json'), '{ not json')
    const store = createCredentialStore(dir)
    assert.throws(() => store.get('http://a'), /damaged/)
  })

  it('normalizes server URLs and refuses non-http ones', () => {
    assert.equal(normalizeServer('http://h:8080/'), 'http://h:8080')
    assert.equal(normalizeServer('HTTPS://H.example/base/'), 'https://h.example/base')
    assert.throws(() => normalizeServer('ftp://h'), /http or https/)
    assert.throws(() => normalizeServer('not a url'), /invalid server URL/)
  })
})
