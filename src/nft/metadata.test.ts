import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { BerthError } from '../domain/errors.ts'
import { createOutboundClient } from '../outbound/guarded-client.ts'
import { fetchMetadata, fillPlaceholders, needsMetadata, resolveUri, substituteId } from './metadata.ts'

// Token metadata: URI forms, the size and time limits, validation, and template placeholders.
// HTTP and the IPFS gateway are served by a loopback server of this test's own, which the guarded
// outbound client reaches because the test allows exactly its address and port.

const CID = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'

let base: string
const server = createServer((req, res) => {
  if (req.url === `/ipfs/${CID}/7.json`) return res.end(JSON.stringify({ name: 'from ipfs' }))
  if (req.url === '/chunked-big') {
    // No content-length: the limit must hold while reading.
    res.writeHead(200, { 'content-type': 'application/json' })
    for (let i = 0; i < 40; i++) res.write(' '.repeat(1024))
    return res.end('{}')
  }
  if (req.url === '/silent') return // never answers: the timeout must end it
  res.writeHead(404)
  res.end()
})
before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
after(() => {
  server.closeAllConnections()
  server.close()
})

const options = () => ({
  ipfsGateway: `${base}/ipfs/`,
  maxBytes: 8 * 1024,
  client: createOutboundClient({ allow: [new URL(base).host], timeoutMs: 300, maxBytes: 8 * 1024 }),
})
const failsWith = async (uri: string, code: string, pattern: RegExp) => {
  await assert.rejects(fetchMetadata(uri, options()), (error: unknown) => {
    assert.ok(error instanceof BerthError)
    assert.equal(error.code, code)
    assert.match(error.message, pattern)
    return true
  })
}

describe('token metadata', () => {
  test('ERC-1155 {id} is the token id as 64 lower-case hex digits', () => {
    assert.equal(substituteId('https://x/{id}.json', '314'), `https://x/${'0'.repeat(61)}13a.json`)
    const max = (2n ** 256n - 1n).toString()
    assert.equal(substituteId('{id}', max), 'f'.repeat(64))
  })

  test('data: URIs, base64 or plain, are decoded without fetching', async () => {
    const json = JSON.stringify({ name: 'A', attributes: [{ trait_type: 'eyes', value: 3 }] })
    const b64 = `data:application/json;base64,${Buffer.from(json).toString('base64')}`
    assert.deepEqual(await fetchMetadata(b64, options()), JSON.parse(json))
    assert.deepEqual(
      await fetchMetadata(`data:application/json,${encodeURIComponent(json)}`, options()),
      JSON.parse(json),
    )
    assert.deepEqual(await fetchMetadata(`data:application/json;utf8,${json}`, options()), JSON.parse(json))
  })

  test('ipfs:// goes through the configured gateway, from a valid CID and a plain path only', async () => {
    assert.deepEqual(resolveUri(`ipfs://${CID}/7.json`, 'https://gw.example/ipfs/'), {
      url: `https://gw.example/ipfs/${CID}/7.json`,
    })
    assert.deepEqual(resolveUri(`ipfs://ipfs/${CID}/a%20b/7.json`, 'https://gw.example/ipfs'), {
      url: `https://gw.example/ipfs/${CID}/a%20b/7.json`,
    })
    const v0 = 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'
    assert.deepEqual(resolveUri(`ipfs://${v0}`, 'https://gw.example/ipfs/'), {
      url: `https://gw.example/ipfs/${v0}`,
    })
    for (const uri of [
      'ipfs://bafy123/7.json',
      'ipfs://evil.example/x',
      `ipfs://${CID}/../../admin`,
      `ipfs://${CID}/%2e%2e/%2E%2e/admin`,
      `ipfs://${CID}/a%2fb`,
      `ipfs://${CID}/7.json?x=1`,
      `ipfs://${CID}/7.json#frag`,
      `ipfs://${CID}@evil.example/`,
    ]) {
      assert.throws(() => resolveUri(uri, 'https://gw.example/ipfs/'), /bad ipfs URI/, uri)
    }
    assert.deepEqual(await fetchMetadata(`ipfs://${CID}/7.json`, options()), { name: 'from ipfs' })
  })

  test('bad metadata is refused with a message naming the problem', async () => {
    const data = (value: string) => `data:application/json,${encodeURIComponent(value)}`
    await failsWith(data('{"name": 5}'), 'invalid_input', /name/)
    await failsWith(data('{"attributes": [{"value": {}}]}'), 'invalid_input', /attributes/)
    await failsWith(data('{"image": ["x"]}'), 'invalid_input', /image/)
    await failsWith(data('"just a string"'), 'invalid_input', /not a JSON object/)
    await failsWith(data('{'), 'invalid_input', /not valid JSON/)
    await failsWith(data(JSON.stringify({ description: 'x'.repeat(9000) })), 'invalid_input', /larger than/)
    await failsWith('data:image/png;base64,AAAA', 'invalid_input', /expected application\/json/)
    await failsWith('ftp://x/1', 'invalid_input', /unsupported URI scheme/)
    await failsWith('ipfs://', 'invalid_input', /bad ipfs URI/)
  })

  test('size and time limits hold over HTTP', async () => {
    await failsWith(`${base}/chunked-big`, 'invalid_input', /larger than 8192 bytes/)
    await failsWith(`${base}/silent`, 'provider_unavailable', /could not be fetched/)
    // Whatever the host answered is not told: the same words as for one that never answered.
    await failsWith(`${base}/missing`, 'provider_unavailable', /^token metadata could not be fetched$/)
  })

  test('placeholders fill from the token; a missing trait is empty', () => {
    const env = {
      GREETING: 'I am {{name}} #{{tokenId}} on {{chainId}}',
      EYES: '{{ attributes.eyes }}',
      MOUTH: '{{attributes.mouth}}',
      OWNER: '{{owner}}',
      PLAIN: 'no placeholders',
    }
    const filled = fillPlaceholders(env, {
      tokenId: '7',
      chainId: 1,
      contract: '0xabc',
      owner: '0xdef',
      metadata: { name: 'Bot', attributes: [{ trait_type: 'eyes', value: 3 }] },
    })
    assert.deepEqual(filled, {
      GREETING: 'I am Bot #7 on 1',
      EYES: '3',
      MOUTH: '',
      OWNER: '0xdef',
      PLAIN: 'no placeholders',
    })
    assert.equal(needsMetadata({ A: '{{tokenId}} {{owner}}' }), false)
    assert.equal(needsMetadata({ A: '{{attributes.x}}' }), true)
  })
})
