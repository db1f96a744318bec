import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { NodeResources } from './node.ts'
import { rescheduleDelayMs } from './node.ts'
import { type CandidateNode, chooseNode, type ReplicaDemand } from './placement.ts'

const size = (cpus: number, memoryMb: number, gpus: NodeResources['gpus'] = []): NodeResources => ({
  milliCpus: cpus * 1000,
  memoryMb,
  diskMb: 100_000,
  gpus,
})
/** What placements hold: no disk unless said. */
const held = (cpus: number, memoryMb: number, gpus: NodeResources['gpus'] = []): NodeResources => ({
  ...size(cpus, memoryMb, gpus),
  diskMb: 0,
})
const NOTHING = held(0, 0)

const node = (id: string, over: Partial<CandidateNode> = {}): CandidateNode => ({
  id,
  connectivity: 'online',
  scheduling: 'active',
  labels: { region: 'eu' },
  allocatable: size(4, 8192),
  reserved: NOTHING,
  uptimeBasisPoints7d: 9_900,
  sameDeploymentReplicas: 0,
  sameOwnerDeployments: 0,
  ...over,
})

const replica = (over: Partial<ReplicaDemand> = {}): ReplicaDemand => ({
  milliCpus: 1000,
  memoryMb: 1024,
  diskMb: 1024,
  gpus: 0,
  nodeLabels: {},
  ...over,
})

const MIN = 9_500

describe('choosing a node for a replica', () => {
  it('says why nothing fits, naming the furthest filter any node passed', () => {
    assert.deepEqual(chooseNode([], replica(), MIN), {
      placed: false,
      failed: 'online',
      reason: 'the fleet has no nodes',
    })
    const lost = node('a', { connectivity: 'lost' })
    assert.equal((chooseNode([lost], replica(), MIN) as { failed: string }).failed, 'online')
    const cordoned = node('b', { scheduling: 'cordoned' })
    assert.equal(
      (chooseNode([lost, cordoned], replica(), MIN) as { reason: string }).reason,
      'every online node is cordoned or draining',
    )
    const us = node('c', { labels: { region: 'us' } })
    assert.deepEqual(chooseNode([lost, cordoned, us], replica({ nodeLabels: { region: 'eu' } }), MIN), {
      placed: false,
      failed: 'labels',
      reason: 'no schedulable node has the labels region=eu',
    })
    const flaky = node('d', { uptimeBasisPoints7d: 9_499 })
    assert.deepEqual(chooseNode([us, flaky], replica({ nodeLabels: { region: 'eu' } }), MIN), {
      placed: false,
      failed: 'uptime',
      reason: 'no matching node has 95% uptime over 7 days',
    })
    const full = node('e', { reserved: held(3.5, 1024) })
    assert.deepEqual(chooseNode([flaky, full], replica(), MIN), {
      placed: false,
      failed: 'capacity',
      reason: 'no matching node has 1 CPUs, 1024 MB memory, 1024 MB disk free',
    })
  })

  it('counts what is reserved, memory, disk and GPUs of the model asked for', () => {
    const busy = node('a', { reserved: held(3, 7168) })
    assert.equal(chooseNode([busy], replica(), MIN).placed, true, 'exactly the last CPU and GB')
    assert.equal(chooseNode([busy], replica({ memoryMb: 1025 }), MIN).placed, false)
    assert.equal(chooseNode([node('b')], replica({ diskMb: 100_001 }), MIN).placed, false)
    const gpuNode = node('g', { allocatable: size(4, 8192, [{ model: 'a100', count: 2 }]) })
    assert.equal(chooseNode([gpuNode], replica({ gpus: 2, gpuModel: 'a100' }), MIN).placed, true)
    assert.equal(chooseNode([gpuNode], replica({ gpus: 1, gpuModel: 'h100' }), MIN).placed, false)
    const oneUsed = { ...gpuNode, reserved: held(0, 0, [{ model: 'a100', count: 1 }]) }
    assert.equal(chooseNode([oneUsed], replica({ gpus: 2 }), MIN).placed, false)
    assert.equal(chooseNode([node('n')], replica({ gpus: 1 }), MIN).placed, false, 'no GPU at all')
    // A replica that took "any" GPU holds the node's only one: none is left for a named model.
    const single = node('s', { allocatable: size(4, 8192, [{ model: 'a100', count: 1 }]) })
    const anyTaken = { ...single, reserved: held(0, 0, [{ model: '', count: 1 }]) }
    assert.equal(chooseNode([anyTaken], replica({ gpus: 1, gpuModel: 'a100' }), MIN).placed, false)
    assert.equal(chooseNode([anyTaken], replica({ gpus: 1 }), MIN).placed, false)
  })

  it('prefers uptime and free room, spreads a deployment, then an owner, and breaks ties by id', () => {
    const steady = node('a', { uptimeBasisPoints7d: 10_000 })
    const shaky = node('b', { uptimeBasisPoints7d: 9_600 })
    assert.equal(pick([shaky, steady]), 'a')
    const roomy = node('c', { allocatable: size(16, 65536), uptimeBasisPoints7d: 9_600 })
    assert.equal(pick([steady, roomy]), 'c', 'free room outweighs a few points of uptime')
    const hasReplica = { ...roomy, sameDeploymentReplicas: 1 }
    assert.equal(pick([hasReplica, shaky]), 'b', "a node without this deployment's replica first")
    const hasOwner = { ...steady, sameOwnerDeployments: 1 }
    assert.equal(pick([hasOwner, node('d', { uptimeBasisPoints7d: 10_000 })]), 'd')
    assert.equal(pick([node('z'), node('y'), node('x')]), 'x')
    const chosen = chooseNode([steady], replica(), MIN)
    assert.ok(chosen.placed)
    assert.match(chosen.reason, /^uptime 100% over 7 days, 3 CPUs and 7168 MB free after it, 0 replica/)
  })
})

function pick(nodes: CandidateNode[]): string | undefined {
  const chosen = chooseNode(nodes, replica(), MIN)
  return chosen.placed ? chosen.nodeId : undefined
}

describe('how long a lost node’s replicas wait before they move', () => {
  it('waits the configured delay after a first loss, doubling per further loss, at most 32 times it', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 20].map((losses) => rescheduleDelayMs(30, losses) / 1000),
      [30, 60, 120, 240, 480, 960, 960, 960],
    )
    assert.equal(rescheduleDelayMs(0, 3), 0, 'no delay configured: at once')
  })
})
