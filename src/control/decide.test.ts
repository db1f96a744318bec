import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  instance,
  minutesAgo,
  observedOf,
  outcome,
  rowOf,
  unjudged,
  type World,
  withCheck,
  withCheckSpec,
} from '../../test/helpers/decide-world.ts'
import type { DeploymentRow } from '../db/deployment-rows.ts'

// decide() as a table: each row is a deployment (status, desired state, counters), what the
// executor would find when asked (funding, the provider's observation, a probe, an apply), and
// the outcome: what was asked, the provider call, the statuses passed through, and the next look.

/** The provider has no room: the start waits at this place in its queue. */
const noRoom = (place: number) =>
  ({
    admitted: false,
    waitReason: 'insufficient_capacity',
    message: 'no room',
    place,
    retryInMs: 2000,
  }) as const

describe('decide', () => {
  const table: Array<[string, DeploymentRow, World, string]> = [
    // desired: deleted
    [
      'running, delete asked',
      rowOf({ status: 'running', desiredState: 'deleted' }),
      {},
      '- | - | deleting | now',
    ],
    ['deleting', rowOf({ status: 'deleting', desiredState: 'deleted' }), {}, '- | remove | deleted | never'],
    [
      'failed, delete asked',
      rowOf({ status: 'failed', desiredState: 'deleted' }),
      {},
      '- | - | deleting | now',
    ],
    [
      'pending, delete asked',
      rowOf({ status: 'pending', desiredState: 'deleted' }),
      {},
      '- | - | deleting | now',
    ],
    ['deleted', rowOf({ status: 'deleted', desiredState: 'deleted' }), {}, '- | - | = | never'],
    // desired: stopped
    [
      'running, stop asked',
      rowOf({ status: 'running', desiredState: 'stopped' }),
      {},
      '- | - | stopping | now',
    ],
    ['stopping', rowOf({ status: 'stopping', desiredState: 'stopped' }), {}, '- | stop | stopped | never'],
    ['stopped', rowOf({ status: 'stopped', desiredState: 'stopped' }), {}, '- | - | = | never'],
    // A failed deployment is rolled back: its instances removed, their ports freed.
    [
      'failed, stop asked',
      rowOf({ status: 'failed', desiredState: 'stopped' }),
      {},
      '- | release | = | never',
    ],
    // After the bound NFT changed hands, the previous holder's instances are removed, never started
    // again: with their volumes, or keeping them when the collection carries volumes over.
    [
      'stopping after an NFT handover',
      rowOf({ status: 'stopping', desiredState: 'stopped', handover: 'fresh' }),
      {},
      '- | remove | stopped | never',
    ],
    [
      'stopping after an NFT handover carrying volumes',
      rowOf({ status: 'stopping', desiredState: 'stopped', handover: 'carry' }),
      {},
      '- | release | stopped | never',
    ],
    [
      'stopped when the NFT changed hands',
      rowOf({ status: 'stopped', desiredState: 'stopped', handover: 'fresh' }),
      {},
      '- | remove | = | now',
    ],
    [
      'failed when the NFT changed hands, volumes carried',
      rowOf({ status: 'failed', desiredState: 'stopped', handover: 'carry' }),
      {},
      '- | release | = | now',
    ],
    [
      'the new holder starts before the handover was done',
      rowOf({ status: 'stopped', desiredState: 'running', handover: 'fresh' }),
      {},
      '- | remove | = | now',
    ],
    [
      'running for the previous holder, the new holder already asked to start',
      rowOf({ status: 'running', desiredState: 'running', handover: 'fresh' }),
      {},
      '- | - | stopping | now',
    ],
    [
      'a start arrived while stopping for a handover',
      rowOf({ status: 'stopping', desiredState: 'running', handover: 'fresh' }),
      {},
      '- | remove | stopped | now',
    ],
    [
      'awaiting payment, stop asked',
      rowOf({ status: 'awaiting_payment', desiredState: 'stopped' }),
      {},
      '- | - | stopping | now',
    ],
    [
      'deleting, stop asked (refused)',
      rowOf({ status: 'deleting', desiredState: 'stopped' }),
      {},
      'refused deleting>stopping',
    ],
    // desired: running, from rest
    [
      'pending, funded, healthy at once',
      rowOf(),
      {},
      'funding+capacity+apply | - | scheduled>deploying>starting>running | 30000',
    ],
    [
      'pending, not funded',
      rowOf(),
      { funding: { admitted: false, message: 'no funds', retryInMs: 5000 } },
      'funding | - | awaiting_payment | 5000',
    ],
    [
      'awaiting payment, still not funded',
      rowOf({ status: 'awaiting_payment' }),
      { funding: { admitted: false, message: 'no funds', retryInMs: 5000 } },
      'funding | - | = | 5000',
    ],
    // Paid for, but the provider has no room: the start waits in pending, in its queue.
    [
      'pending, no room on the provider',
      rowOf({ status: 'pending' }),
      {
        capacity: noRoom(2),
      },
      'funding+capacity | - | = | 2000',
    ],
    [
      'stopped, started with no room on the provider',
      rowOf({ status: 'stopped' }),
      {
        capacity: noRoom(1),
      },
      'funding+capacity | - | pending | 2000',
    ],
    [
      'awaiting payment, paid, no room on the provider',
      rowOf({ status: 'awaiting_payment' }),
      {
        capacity: noRoom(1),
      },
      'funding+capacity | - | pending | 2000',
    ],
    [
      'awaiting payment, funded',
      rowOf({ status: 'awaiting_payment' }),
      {},
      'funding+capacity+apply | - | scheduled>deploying>starting>running | 30000',
    ],
    [
      'stopped, start asked',
      rowOf({ status: 'stopped', stopReason: 'user' }),
      {},
      'funding+capacity+apply | - | scheduled>deploying>starting>running | 30000',
    ],
    [
      'failed, nothing asked since',
      rowOf({ status: 'failed', restartGeneration: 1, appliedRestartGeneration: 1 }),
      {},
      '- | release | = | never',
    ],
    [
      'failed, start asked',
      rowOf({ status: 'failed', restartGeneration: 2, appliedRestartGeneration: 1 }),
      {},
      'funding+capacity+apply | - | scheduled>deploying>starting>running | 30000',
    ],
    ['stopping, start asked', rowOf({ status: 'stopping' }), {}, '- | stop | stopped | now'],
    ['scheduled', rowOf({ status: 'scheduled' }), {}, 'apply | - | deploying>starting>running | 30000'],
    [
      'deploying (resumed)',
      rowOf({ status: 'deploying', deployStartedAt: minutesAgo(1) }),
      {},
      'apply | - | starting>running | 30000',
    ],
    // the first look after an apply
    [
      'applied, a replica not yet running',
      rowOf(),
      { applied: observedOf(instance({ state: 'created' })) },
      'funding+capacity+apply | - | scheduled>deploying>starting | now',
    ],
    [
      'applied, the provider says unhealthy',
      rowOf({ spec: withCheck }),
      { applied: observedOf(instance({ health: 'unhealthy' })) },
      'funding+capacity+apply | - | scheduled>deploying>starting | now',
    ],
    [
      'applied, probe passes',
      rowOf({ spec: withCheck }),
      { applied: unjudged },
      'funding+capacity+apply+probe | - | scheduled>deploying>starting>running | 10000',
    ],
    [
      'applied, probe fails',
      rowOf({ spec: withCheck }),
      { applied: unjudged, probeFails: true },
      'funding+capacity+apply+probe | - | scheduled>deploying>starting | now',
    ],
    [
      'applied, two passes needed',
      rowOf({ spec: { ...withCheck, healthCheck: { ...withCheckSpec.healthCheck, healthyThreshold: 2 } } }),
      { applied: unjudged },
      'funding+capacity+apply | - | scheduled>deploying>starting | now',
    ],
    // supervising
    [
      'running, restart asked',
      rowOf({ status: 'running', restartGeneration: 1 }),
      {},
      '- | restart | starting | now',
    ],
    [
      'unhealthy, budget left',
      rowOf({ status: 'unhealthy', restartCount: 1, restartWindowStartedAt: minutesAgo(5) }),
      {},
      '- | restart | starting | now',
    ],
    [
      'unhealthy, budget spent',
      rowOf({ status: 'unhealthy', restartCount: 2, restartWindowStartedAt: minutesAgo(5) }),
      {},
      '- | - | failed | now',
    ],
    [
      'unhealthy, budget spent long ago',
      rowOf({ status: 'unhealthy', restartCount: 2, restartWindowStartedAt: minutesAgo(61) }),
      {},
      '- | restart | starting | now',
    ],
    [
      'running, healthy',
      rowOf({ status: 'running', runningSince: minutesAgo(1) }),
      {},
      'observe | - | = | 30000',
    ],
    [
      'running, probe passes',
      rowOf({ status: 'running', spec: withCheck }),
      { observed: unjudged },
      'observe+probe | - | = | 10000',
    ],
    [
      'running, probe fails once',
      rowOf({ status: 'running', spec: withCheck }),
      { observed: unjudged, probeFails: true },
      'observe+probe | - | = | 10000',
    ],
    [
      'running, probe fails a third time',
      rowOf({ status: 'running', spec: withCheck, unhealthyStreak: 2, restartCount: 1 }),
      { observed: unjudged, probeFails: true },
      'observe+probe | - | unhealthy | 30000',
    ],
    [
      'running, instances gone',
      rowOf({ status: 'running' }),
      { observed: null },
      'observe | - | deploying | now',
    ],
    [
      'running, a replica missing',
      rowOf({ status: 'running', spec: { name: 'web', image: 'example/web:1', replicas: 2 } }),
      {},
      'observe | - | deploying | now',
    ],
    [
      'running, a replica exited',
      rowOf({ status: 'running' }),
      { observed: observedOf(instance({ state: 'exited', exitCode: 1 })) },
      'observe | - | unhealthy | now',
    ],
    ['starting, healthy', rowOf({ status: 'starting' }), {}, 'observe | - | running | 30000'],
    [
      'starting, first probe fails',
      rowOf({ status: 'starting', spec: withCheck }),
      { observed: unjudged, probeFails: true },
      'observe+probe | - | = | 100',
    ],
    [
      'starting, restart asked',
      rowOf({ status: 'starting', restartGeneration: 1 }),
      {},
      '- | restart | = | now',
    ],
    // The longest a start may run unbilled (600 s here): past it, the start fails (rolled back
    // next, never restarted by the ladder, whose waits would run it on unbilled).
    [
      'starting past the unbilled window',
      rowOf({ status: 'starting', startingSince: minutesAgo(10) }),
      {},
      '- | - | failed | now',
    ],
    [
      'starting within the unbilled window',
      rowOf({ status: 'starting', startingSince: minutesAgo(9) }),
      {},
      'observe | - | running | 30000',
    ],
    [
      'unhealthy, but a restart asked',
      rowOf({ status: 'unhealthy', restartGeneration: 1 }),
      {},
      '- | restart | starting | now',
    ],
  ]
  for (const [name, row, world, expected] of table) {
    it(name, () => assert.equal(outcome(row, world), expected))
  }
})
