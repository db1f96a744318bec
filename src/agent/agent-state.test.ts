import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { loadAgentState, saveNode } from './agent-state.ts'

describe("the agent's data dir", () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-agent-state-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('keeps one key, readable by its owner only, and the node it enrolled as', () => {
    const first = loadAgentState(dir)
    assert.equal(statSync(join(dir, 'agent-key.pem')).mode & 0o777, 0o600)
    assert.equal(first.node, undefined)
    assert.equal(loadAgentState(dir).key.publicKey, first.key.publicKey, 'the same key on the next start')
    const node = {
      server: 'http://berth.test',
      nodeId: '00000000-0000-4000-8000-000000000001',
      heartbeatSeconds: 10,
    }
    saveNode(dir, node)
    assert.deepEqual(loadAgentState(dir).node, node)
  })

  it('enrolls again rather than trust a saved node it cannot read', () => {
    for (const text of [
      '{"server":"http://berth.test","nodeId":"x"}',
      '{"heartbeatSeconds":0}',
      'not json',
    ]) {
      writeFileSync(join(dir, 'node.json'), text)
      assert.equal(loadAgentState(dir).node, undefined, text)
    }
  })
})
