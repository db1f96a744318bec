import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { invalidAllowEntries, isInternalAddress, parseAllowList } from './address-policy.ts'

// Addresses are only ever classified here, never contacted.

describe('outbound address policy', () => {
  it('refuses every address that is not public unicast, in every spelling', () => {
    for (const address of [
      '127.0.0.1',
      '127.255.0.9',
      '10.0.0.1',
      '172.16.5.4',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.251',
      '255.255.255.255',
      '::',
      '::1',
      '[::1]',
      '::ffff:127.0.0.1',
      '::ffff:a9fe:a9fe',
      '64:ff9b::a9fe:a9fe',
      '2002:7f00:1::',
      'fc00::1',
      'fd12:3456::1',
      'fe80::1',
      'fe80::1%eth0',
      'ff02::1',
      'not-an-address',
    ]) {
      assert.equal(isInternalAddress(address), true, address)
    }
  })

  it('lets public unicast addresses through', () => {
    for (const address of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700::1111']) {
      assert.equal(isInternalAddress(address), false, address)
    }
  })

  it('allows what the operator lists, by CIDR or by host and port', () => {
    const allow = parseAllowList(['10.1.0.0/16', 'gateway.internal', '127.0.0.1:8080', '[::1]:5001'])
    assert.equal(allow.allows({ host: 'a.test', port: 80, address: '10.1.2.3' }), true)
    assert.equal(allow.allows({ host: 'a.test', port: 80, address: '10.2.0.1' }), false)
    assert.equal(allow.allows({ host: 'gateway.internal', port: 9999, address: '10.9.9.9' }), true)
    assert.equal(allow.allows({ host: '127.0.0.1', port: 8080, address: '127.0.0.1' }), true)
    assert.equal(allow.allows({ host: '127.0.0.1', port: 8081, address: '127.0.0.1' }), false)
    assert.equal(allow.allows({ host: '[::1]', port: 5001, address: '::1' }), true)
    assert.equal(allow.allows({ host: 'other.test', port: 8080, address: '127.0.0.1' }), false)
  })

  it('names the entries that are neither a CIDR nor a host[:port]', () => {
    assert.deepEqual(invalidAllowEntries(['10.0.0.0/8', 'host.test:80', '[fd00::1]:443', 'fd00::/8']), [])
    assert.deepEqual(invalidAllowEntries(['10.0.0.0/33', 'http://x', 'a b', 'fd00::/129']), [
      '10.0.0.0/33',
      'http://x',
      'a b',
      'fd00::/129',
    ])
  })
})
