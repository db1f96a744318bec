import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { fitReplicas, meetsConstraint, type NodeRoom } from './placement.ts'

const GiB = 2 ** 30
const node = (id: string, cpus: number, memoryGiB: number, extra: Partial<NodeRoom> = {}): NodeRoom => ({
  id,
  hostname: `host-${id}`,
  role: 'worker',
  labels: {},
  freeNanoCpus: cpus * 1e9,
  freeMemoryBytes: memoryGiB * GiB,
  ...extra,
})
const replica = (cpus: number, memoryGiB: number, constraints: string[] = []) => ({
  nanoCpus: cpus * 1e9,
  memoryBytes: memoryGiB * GiB,
  constraints,
})

describe('swarm placement', () => {
  it('refuses a replica no single node can hold, even when the nodes together could', () => {
    const verdict = fitReplicas([node('a', 2, 4), node('b', 2, 4)], [replica(3, 1)])
    assert.equal(verdict.placed, false)
    assert.match(
      verdict.message,
      /replica 0 \(3 CPUs, 1024 MiB\); the most free on an allowed node is 2 CPUs/,
    )
  })

  it('takes the room each replica uses before placing the next', () => {
    assert.equal(fitReplicas([node('a', 2, 4)], [replica(1, 1), replica(1, 1)]).placed, true)
    const third = fitReplicas([node('a', 2, 4)], [replica(1, 1), replica(1, 1), replica(1, 1)])
    assert.equal(third.placed, false)
    assert.match(third.message, /replica 2/)
    const spread = fitReplicas([node('a', 2, 4), node('b', 2, 4)], [replica(2, 1), replica(2, 1)])
    assert.deepEqual(spread, { placed: true, message: 'fits on swarm nodes host-a, host-b' })
  })

  it('places only on nodes that meet the constraints', () => {
    const nodes = [node('a', 8, 8, { role: 'manager' }), node('b', 1, 1, { labels: { zone: 'x' } })]
    assert.equal(fitReplicas(nodes, [replica(2, 1, ['node.role==worker'])]).placed, false)
    assert.equal(
      fitReplicas(nodes, [replica(1, 1, ['node.role!=manager', 'node.labels.zone==x'])]).placed,
      true,
    )
    const none = fitReplicas(nodes, [replica(1, 1, ['node.labels.zone==y'])])
    assert.match(none.message, /no usable swarm node meets replica 0's constraints \(node.labels.zone==y\)/)
  })

  it('judges node id, hostname, role and labels; leaves engine attributes to Swarm', () => {
    const a = node('a', 1, 1, { labels: { pool: 'tenants' } })
    assert.equal(meetsConstraint(a, 'node.id==a'), true)
    assert.equal(meetsConstraint(a, 'node.id!=a'), false)
    assert.equal(meetsConstraint(a, 'node.hostname==host-b'), false)
    assert.equal(meetsConstraint(a, 'node.labels.pool == tenants'), true)
    assert.equal(meetsConstraint(a, 'node.labels.missing!=x'), true)
    assert.equal(meetsConstraint(a, 'engine.labels.gpu==yes'), true)
  })
})
