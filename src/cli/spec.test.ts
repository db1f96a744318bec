import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { BerthError } from '../domain/errors.ts'
import { buildSpec, parseCommand, parseNft, parsePort, readSpecFile } from './commands/spec.ts'

const invalid = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(
    fn,
    (error: unknown) =>
      error instanceof BerthError && error.code === 'invalid_input' && pattern.test(error.message),
  )

describe('deploy flags → spec', () => {
  it('builds a spec from flags alone', () => {
    const spec = buildSpec({
      name: 'web',
      image: 'nginx:1.27',
      port: ['80', '53/udp', '8443/TCP'],
      env: ['A=1', 'URL=http://x?a=b', 'EMPTY='],
      cpus: '0.5',
      memory: '512',
      replicas: '2',
      label: ['team=core'],
      provider: 'simulated',
      command: '["node", "server.js"]',
    })
    assert.deepEqual(spec, {
      name: 'web',
      image: 'nginx:1.27',
      provider: 'simulated',
      command: ['node', 'server.js'],
      replicas: 2,
      ports: [
        { containerPort: 80, protocol: 'tcp' },
        { containerPort: 53, protocol: 'udp' },
        { containerPort: 8443, protocol: 'tcp' },
      ],
      env: { A: '1', URL: 'http://x?a=b', EMPTY: '' },
      labels: { team: 'core' },
      resources: { cpus: 0.5, memoryMb: 512 },
    })
  })

  it('lets flags override a file: scalars and ports replace, env/labels/resources merge per key', () => {
    const file = {
      name: 'from-file',
      image: 'busybox',
      ports: [{ containerPort: 1, protocol: 'tcp' }],
      env: { A: 'file', B: 'file' },
      labels: { x: '1' },
      resources: { cpus: 1, memoryMb: 128, diskMb: 10 },
      healthCheck: { type: 'tcp', port: 80 },
    }
    const spec = buildSpec({ name: 'from-flag', port: ['8080'], env: ['B=flag'], memory: '256' }, file)
    assert.deepEqual(spec, {
      name: 'from-flag',
      image: 'busybox',
      ports: [{ containerPort: 8080, protocol: 'tcp' }],
      env: { A: 'file', B: 'flag' },
      labels: { x: '1' },
      resources: { cpus: 1, memoryMb: 256, diskMb: 10 },
      healthCheck: { type: 'tcp', port: 80 },
    })
    assert.equal(file.name, 'from-file', 'the file spec is not mutated')
  })

  it('refuses malformed flags with a message naming the flag', () => {
    invalid(() => buildSpec({ name: 'a', image: 'b', port: ['http'] }), /--port http/)
    invalid(() => buildSpec({ name: 'a', image: 'b', port: ['70000'] }), /--port 70000/)
    invalid(() => buildSpec({ name: 'a', image: 'b', env: ['NOVALUE'] }), /--env NOVALUE: expected KEY=VALUE/)
    invalid(() => buildSpec({ name: 'a', image: 'b', env: ['=x'] }), /--env =x/)
    invalid(() => buildSpec({ name: 'a', image: 'b', cpus: 'lots' }), /--cpus lots/)
    invalid(
      () => buildSpec({ name: 'a', image: 'b', memory: '1.5' }),
      /--memory 1.5: expected a positive integer/,
    )
    invalid(() => buildSpec({ name: 'a', image: 'b', replicas: '0' }), /--replicas 0/)
    invalid(() => buildSpec({ image: 'b' }), /needs a name/)
    invalid(() => buildSpec({ name: 'a' }), /needs an image/)
    // A file with services names its images per service.
    const services = [{ name: 'db', image: 'db:1' }]
    assert.deepEqual(buildSpec({ name: 'a' }, { services }), { name: 'a', services })
    invalid(
      () => buildSpec({ name: 'a', image: 'b', env: ['A=1'] }, { env: ['not', 'a', 'map'] }),
      /env must be a mapping/,
    )
  })

  it('parses ports', () => {
    assert.deepEqual(parsePort('443'), { containerPort: 443, protocol: 'tcp' })
    assert.deepEqual(parsePort('53/udp'), { containerPort: 53, protocol: 'udp' })
    assert.throws(() => parsePort('0'))
    assert.throws(() => parsePort('80/sctp'))
  })

  it('splits a command string like a shell, without expanding anything', () => {
    assert.deepEqual(parseCommand('busybox httpd -f -p 80'), ['busybox', 'httpd', '-f', '-p', '80'])
    assert.deepEqual(parseCommand(`sh -c "echo \\"hi\\" \\$HOME" 'it''s' a\\ b ""`), [
      'sh',
      '-c',
      'echo "hi" $HOME',
      'its',
      'a b',
      '',
    ])
    assert.deepEqual(parseCommand('["a b", "c"]'), ['a b', 'c'])
    invalid(() => parseCommand('["a", 1]'), /array of strings/)
    invalid(() => parseCommand('[nope'), /not valid JSON/)
    invalid(() => parseCommand('echo "open'), /unterminated/)
    invalid(() => parseCommand('   '), /empty command/)
  })

  it('reads spec files in JSON and YAML, refusing what is not a mapping', () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-spec-'))
    const json = join(dir, 'spec.json')
    const yaml = join(dir, 'spec.yaml')
    const list = join(dir, 'list.yaml')
    writeFileSync(json, JSON.stringify({ name: 'j', image: 'busybox' }))
    writeFileSync(yaml, 'name: y\nimage: busybox\nports:\n  - containerPort: 80\n')
    writeFileSync(list, '- a\n- b\n')
    assert.deepEqual(readSpecFile(json), { name: 'j', image: 'busybox' })
    assert.deepEqual(readSpecFile(yaml), { name: 'y', image: 'busybox', ports: [{ containerPort: 80 }] })
    invalid(() => readSpecFile(list), /must be a mapping/)
    invalid(() => readSpecFile(join(dir, 'missing.json')), /cannot read/)
    writeFileSync(json, '{ nope')
    invalid(() => readSpecFile(json), /cannot parse/)
  })
})

describe('--nft', () => {
  const contract = `0x${'Ab'.repeat(20)}`
  it('parses chainId:contract:tokenId[:standard], keeping the token id a string', () => {
    const big = (2n ** 256n - 1n).toString()
    assert.deepEqual(parseNft(`1:${contract}:${big}`), {
      chainId: 1,
      contract: contract.toLowerCase(),
      tokenId: big,
      standard: 'erc721',
    })
    assert.equal(parseNft(`5:${contract}:0:erc1155`).standard, 'erc1155')
    const spec = buildSpec({ name: 'a', image: 'x:1', nft: `5:${contract}:7` })
    assert.deepEqual(spec.nft, {
      chainId: 5,
      contract: contract.toLowerCase(),
      tokenId: '7',
      standard: 'erc721',
    })
  })
  it('refuses what is not one', () => {
    for (const bad of [
      '1:0x12:3',
      `x:${contract}:1`,
      `1:${contract}:01`,
      `1:${contract}:1:erc20`,
      `1:${contract}`,
    ]) {
      assert.throws(
        () => parseNft(bad),
        (e: unknown) => e instanceof BerthError && /--nft/.test(e.message),
        bad,
      )
    }
  })
})
