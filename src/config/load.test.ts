import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { BerthError } from '../domain/errors.ts'
import { loadConfig, publicUrlOf } from './load.ts'

let dir: string

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-config-test-'))
})

after(() => {
  rmSync(dir, { recursive: true, force: true })
})

function writeTemp(name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

/** Asserts loadConfig throws one BerthError and returns it. */
function loadError(sources: Parameters<typeof loadConfig>[0]): BerthError {
  let caught: unknown
  try {
    loadConfig(sources)
  } catch (error) {
    caught = error
  }
  assert.ok(caught instanceof BerthError, `expected a BerthError, got ${String(caught)}`)
  assert.equal(caught.code, 'invalid_input')
  return caught
}

describe('loadConfig', () => {
  it('runs with nothing given, on the defaults', () => {
    const config = loadConfig({ env: {} })
    assert.equal(config.port, 8080)
    assert.equal(config.host, '127.0.0.1')
    assert.equal(config.dataDir, './.berth')
    assert.equal(config.logLevel, 'info')
    assert.equal(config.bodyLimitBytes, 1024 * 1024)
    assert.equal(config.databaseUrl, undefined)
    assert.equal(config.adminToken, undefined)
    assert.equal(config.reconciler.leaseSeconds, 30)
    assert.equal(config.reconciler.enabled, true)
    assert.equal(config.siwe.nonceTtlSeconds, 600)
    assert.equal(config.providers.default, undefined)
    assert.equal(config.providers.docker.enabled, 'auto')
    assert.equal(config.providers.simulated.enabled, true)
    assert.deepEqual(config.health.restartLadderSeconds, [0, 30, 300, 900, 1800])
    assert.equal(publicUrlOf(config).toString(), 'http://localhost:8080/')
  })

  it('reads a YAML file', () => {
    const file = writeTemp(
      'basic.yaml',
      'port: 9001\nlogLevel: warn\nreconciler:\n  leaseSeconds: 12\nproviders:\n  simulated:\n    pullMs: 0\n',
    )
    const config = loadConfig({ file, env: {} })
    assert.equal(config.port, 9001)
    assert.equal(config.logLevel, 'warn')
    assert.equal(config.reconciler.leaseSeconds, 12)
    assert.equal(config.reconciler.concurrency, 16, 'untouched nested keys keep their defaults')
    assert.equal(config.providers.simulated.pullMs, 0)
    assert.equal(config.providers.simulated.createMs, 200)
  })

  it('reads a JSON file', () => {
    const file = writeTemp('basic.json', JSON.stringify({ port: 9002, reconciler: { concurrency: 3 } }))
    const config = loadConfig({ file, env: {} })
    assert.equal(config.port, 9002)
    assert.equal(config.reconciler.concurrency, 3)
  })

  it('treats an empty file as no settings', () => {
    const file = writeTemp('empty.yaml', '')
    assert.equal(loadConfig({ file, env: {} }).port, 8080)
  })

  it('applies file < env < flags, merging nested sections key by key', () => {
    const yaml = writeTemp(
      'precedence.yaml',
      'port: 1000\nlogLevel: warn\ndataDir: /from/file\nreconciler:\n  leaseSeconds: 10\n  concurrency: 4\n',
    )
    const json = writeTemp(
      'precedence.json',
      JSON.stringify({
        port: 1000,
        logLevel: 'warn',
        dataDir: '/from/file',
        reconciler: { leaseSeconds: 10, concurrency: 4 },
      }),
    )
    for (const file of [yaml, json]) {
      const config = loadConfig({
        file,
        env: { BERTH_PORT: '2000', BERTH_DATA_DIR: '/from/env', BERTH_RECONCILER__LEASE_SECONDS: '20' },
        flags: { port: 3000 },
      })
      assert.equal(config.port, 3000, 'flags beat env and file')
      assert.equal(config.dataDir, '/from/env', 'env beats file')
      assert.equal(config.logLevel, 'warn', 'file beats defaults')
      assert.equal(config.reconciler.leaseSeconds, 20, 'env beats file inside a section')
      assert.equal(config.reconciler.concurrency, 4, 'a section from env does not wipe the file section')
    }
  })

  it('lets nested flags override one key of a section', () => {
    const file = writeTemp('nested.yaml', 'reconciler:\n  leaseSeconds: 10\n  concurrency: 4\n')
    const config = loadConfig({ file, env: {}, flags: { reconciler: { concurrency: 8 } } })
    assert.equal(config.reconciler.concurrency, 8)
    assert.equal(config.reconciler.leaseSeconds, 10)
  })

  it('ignores flags left undefined (options the user did not pass)', () => {
    const config = loadConfig({ env: { BERTH_PORT: '2000' }, flags: { port: undefined, dataDir: undefined } })
    assert.equal(config.port, 2000)
    assert.equal(config.dataDir, './.berth')
  })

  it('maps BERTH_SECTION__KEY_NAME onto nested camelCase keys', () => {
    const config = loadConfig({
      env: {
        BERTH_RECONCILER__LEASE_SECONDS: '5',
        BERTH_RECONCILER__ENABLED: 'false',
        BERTH_PROVIDERS__SIMULATED__PULL_MS: '0',
        BERTH_SIWE__CLOCK_SKEW_SECONDS: '5',
        BERTH_LOG_LEVEL: 'debug',
        BERTH_BODY_LIMIT_BYTES: '2048',
      },
    })
    assert.equal(config.reconciler.leaseSeconds, 5)
    assert.equal(config.reconciler.enabled, false)
    assert.equal(config.providers.simulated.pullMs, 0)
    assert.equal(config.siwe.clockSkewSeconds, 5)
    assert.equal(config.logLevel, 'debug')
    assert.equal(config.bodyLimitBytes, 2048)
  })

  it('reads DATABASE_URL, and DATABASE_URL_FILE', () => {
    const url = 'postgres://berth:secret@db.example:5432/berth'
    assert.equal(loadConfig({ env: { DATABASE_URL: url } }).databaseUrl, url)
    const file = writeTemp('database-url', `${url}\n`)
    assert.equal(loadConfig({ env: { DATABASE_URL_FILE: file } }).databaseUrl, url)
  })

  it('rejects a DATABASE_URL that is not a postgres URL, naming databaseUrl', () => {
    const error = loadError({ env: { DATABASE_URL: 'mysql://x' } })
    assert.match(error.message, /databaseUrl/)
  })

  it('reads BERTH_ADMIN_TOKEN_FILE from a secret file, trimmed', () => {
    const file = writeTemp('admin-token', '  admin-token-0123456789abcdef \n\n')
    assert.equal(
      loadConfig({ env: { BERTH_ADMIN_TOKEN_FILE: file } }).adminToken,
      'admin-token-0123456789abcdef',
    )
  })

  it('names the variable and the path when a secret file cannot be read', () => {
    const missing = join(dir, 'no-such-secret')
    const error = loadError({ env: { BERTH_ADMIN_TOKEN_FILE: missing } })
    assert.match(error.message, /BERTH_ADMIN_TOKEN_FILE/)
    assert.ok(error.message.includes(missing))
  })

  it('rejects a short admin token naming adminToken', () => {
    const error = loadError({ env: { BERTH_ADMIN_TOKEN: 'short' } })
    assert.match(error.message, /adminToken/)
  })

  it('refuses a retention of notifications shorter than their retry schedule', () => {
    const error = loadError({ env: { BERTH_NOTIFICATIONS__RETENTION_DAYS: '3' } })
    assert.match(
      error.message,
      /notifications\.retentionDays: must be longer than the retry schedule \(3\.8 days/,
    )
    const shortSchedule = {
      BERTH_NOTIFICATIONS__RETENTION_DAYS: '3',
      BERTH_NOTIFICATIONS__RETRY_DELAYS_SECONDS: '5,60',
    }
    assert.equal(loadConfig({ env: shortSchedule }).notifications.retentionDays, 3)
  })

  it('reports every bad value at once, in one error', () => {
    const file = writeTemp('bad.yaml', 'colour: red\nreconciler:\n  leaseSecs: 5\n')
    const error = loadError({ file, env: { BERTH_PORT: 'abc' }, flags: { logLevel: 'loud' } })
    for (const problem of ['port', 'logLevel', 'colour', 'leaseSecs']) {
      assert.ok(error.message.includes(problem), `message should name ${problem}: ${error.message}`)
    }
    const details = error.details as Array<{ path: string; message: string }>
    assert.ok(Array.isArray(details))
    const paths = details.map((d) => d.path)
    assert.ok(paths.includes('port'), JSON.stringify(paths))
    assert.ok(paths.includes('logLevel'), JSON.stringify(paths))
    assert.ok(paths.includes('reconciler'), JSON.stringify(paths))
  })

  it('rejects out-of-range numbers naming the key', () => {
    assert.match(loadError({ env: { BERTH_PORT: '70000' } }).message, /port/)
    assert.match(
      loadError({ env: { BERTH_RECONCILER__LEASE_SECONDS: '1' } }).message,
      /reconciler\.leaseSeconds/,
    )
    assert.match(
      loadError({ env: { BERTH_RECONCILER__CONCURRENCY: '2.5' } }).message,
      /reconciler\.concurrency/,
    )
    assert.match(loadError({ env: { BERTH_RECONCILER__ENABLED: 'maybe' } }).message, /reconciler\.enabled/)
  })

  it('never reads an empty variable as 0', () => {
    // `BERTH_PORT=` in a unit file or shell means "not set"; it must not silently become port 0
    // (a random port) or zero allowed restarts.
    for (const [name, path] of [
      ['BERTH_PORT', 'port'],
      ['BERTH_HEALTH__MAX_RESTARTS', 'health.maxRestarts'],
    ] as const) {
      let config: ReturnType<typeof loadConfig> | undefined
      let message = ''
      try {
        config = loadConfig({ env: { [name]: '' } })
      } catch (error) {
        message = (error as Error).message
      }
      if (config) {
        assert.equal(config.port, 8080, `${name}= gave port ${config.port}`)
        assert.equal(config.health.maxRestarts, 5, `${name}= gave maxRestarts ${config.health.maxRestarts}`)
      } else {
        assert.ok(message.includes(path), message)
      }
    }
  })

  it('rejects an unknown BERTH_ variable, naming it', () => {
    const error = loadError({ env: { BERTH_NOPE: '1' } })
    assert.match(error.message, /nope/)
  })

  it('rejects an unknown nested BERTH_ variable, naming it', () => {
    const error = loadError({ env: { BERTH_RECONCILER__LEASE_SECS: '5' } })
    assert.match(error.message, /leaseSecs/)
  })

  it('leaves the CLI client variables and foreign variables alone', () => {
    const config = loadConfig({
      env: {
        BERTH_SERVER: 'http://berth.example',
        BERTH_TOKEN: 'some-token',
        BERTH_PRIVATE_KEY: '0x01',
        HOME: '/root',
        PORT: '1',
        NODE_ENV: 'production',
      },
    })
    assert.equal(config.port, 8080)
  })

  it('reports an unreadable config file with its path', () => {
    const missing = join(dir, 'missing.yaml')
    const error = loadError({ file: missing, env: {} })
    assert.match(error.message, /cannot read config file/)
    assert.ok(error.message.includes(missing))
    const directory = loadError({ file: dir, env: {} })
    assert.ok(directory.message.includes(dir))
    if (process.getuid?.() !== 0) {
      const locked = writeTemp('locked.yaml', 'port: 1\n')
      chmodSync(locked, 0)
      assert.match(loadError({ file: locked, env: {} }).message, /cannot read config file/)
    }
  })

  it('reports an unparsable YAML or JSON file with its path', () => {
    const yaml = writeTemp('broken.yaml', 'port: [1, 2\nlogLevel: : :\n')
    const yamlError = loadError({ file: yaml, env: {} })
    assert.match(yamlError.message, /cannot parse config file/)
    assert.ok(yamlError.message.includes(yaml))
    const json = writeTemp('broken.json', '{"port": 1,')
    const jsonError = loadError({ file: json, env: {} })
    assert.match(jsonError.message, /cannot parse config file/)
    assert.ok(jsonError.message.includes(json))
  })

  it('rejects a file whose top level is not a mapping', () => {
    for (const [name, text] of [
      ['list.yaml', '- port\n- 8080\n'],
      ['scalar.yaml', 'just text\n'],
      ['list.json', '[1, 2]'],
    ] as const) {
      const path = writeTemp(name, text)
      const error = loadError({ file: path, env: {} })
      assert.ok(error.message.includes(path), error.message)
      assert.match(error.message, /mapping/)
    }
  })

  it('derives the public URL from the config', () => {
    assert.equal(publicUrlOf(loadConfig({ env: {}, flags: { port: 9999 } })).host, 'localhost:9999')
    assert.equal(
      publicUrlOf(loadConfig({ env: { BERTH_PUBLIC_URL: 'https://berth.example' } })).host,
      'berth.example',
    )
    assert.match(loadError({ env: { BERTH_PUBLIC_URL: 'not a url' } }).message, /publicUrl/)
  })

  it('reads registry credentials (a JSON list in env, a password or a password file) and volume retention', () => {
    const config = loadConfig({
      env: {
        BERTH_PROVIDERS__DOCKER__REGISTRY_AUTHS: JSON.stringify([
          { registry: 'ghcr.io', username: 'me', password: 'secret' },
          { registry: 'registry.example:5000', username: 'ci', passwordFile: '/run/secrets/registry' },
        ]),
        BERTH_PROVIDERS__DOCKER__VOLUME_RETENTION: 'keep',
      },
    })
    assert.equal(config.providers.docker.registryAuths.length, 2)
    assert.equal(config.providers.docker.registryAuths[1]?.passwordFile, '/run/secrets/registry')
    assert.equal(config.providers.docker.volumeRetention, 'keep')
    const defaults = loadConfig({ env: {} }).providers.docker
    assert.deepEqual(defaults.registryAuths, [])
    assert.equal(defaults.volumeRetention, 'delete')
  })

  it('rejects registry credentials with both or neither password, a bad host, or broken JSON', () => {
    const auths = (value: unknown) =>
      loadError({ env: { BERTH_PROVIDERS__DOCKER__REGISTRY_AUTHS: JSON.stringify(value) } }).message
    assert.match(
      auths([{ registry: 'ghcr.io', username: 'me', password: 'a', passwordFile: '/x' }]),
      /registryAuths\.0\.password: give exactly one of password and passwordFile/,
    )
    assert.match(auths([{ registry: 'ghcr.io', username: 'me' }]), /exactly one/)
    assert.match(
      auths([{ registry: 'ghcr io', username: 'me', password: 'a' }]),
      /registryAuths\.0\.registry/,
    )
    assert.match(auths([{ registry: 'ghcr.io', password: 'a' }]), /registryAuths\.0\.username/)
    assert.match(
      loadError({ env: { BERTH_PROVIDERS__DOCKER__REGISTRY_AUTHS: '[{' } }).message,
      /registryAuths/,
    )
    assert.match(
      loadError({ env: { BERTH_PROVIDERS__DOCKER__VOLUME_RETENTION: 'sometimes' } }).message,
      /volumeRetention/,
    )
  })

  it('reads NFT collections and settings, and refuses a collection on an unconfigured chain', () => {
    const network = {
      chainId: 5,
      name: 'five',
      rpcUrls: ['http://127.0.0.1:8545'],
      treasury: `0x${'1'.repeat(40)}`,
      tokens: [
        {
          symbol: 'ETH',
          address: 'native',
          decimals: 18,
          price: { sources: [{ type: 'static', usd: '1' }] },
        },
      ],
    }
    const collection = { chainId: 5, contract: `0x${'A'.repeat(40)}`, standard: 'erc721' }
    const config = loadConfig({
      env: { BERTH_NFT__RECHECK_INTERVAL_SECONDS: '60' },
      flags: { networks: [network], nftCollections: [collection] },
    })
    assert.equal(config.nft.recheckIntervalSeconds, 60)
    assert.equal(config.nft.sweepIntervalSeconds, 3600)
    assert.equal(config.nft.ipfsGateway, 'https://ipfs.io/ipfs/')
    assert.equal(config.nftCollections[0]!.contract, `0x${'a'.repeat(40)}`)
    assert.equal(config.nftCollections[0]!.carrySecrets, false)
    const elsewhere = loadError({
      env: {},
      flags: { networks: [network], nftCollections: [{ ...collection, chainId: 6 }] },
    })
    assert.match(elsewhere.message, /nftCollections\.0\.chainId: chainId 6 is not one of networks/)
    const twice = loadError({
      env: {},
      flags: { networks: [network], nftCollections: [collection, collection] },
    })
    assert.match(twice.message, /listed twice/)
    const badTemplate = loadError({
      env: {},
      flags: { networks: [network], nftCollections: [{ ...collection, template: { image: 'x y' } }] },
    })
    assert.match(badTemplate.message, /template\.image/)
  })
})
