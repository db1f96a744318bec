import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type Deployment, formatDeployment, formatDeploymentRow } from './output.ts'

// What `berth get` and `berth ls` say about a start that waits for its provider's capacity.

const waiting: Deployment = {
  id: '5f0c1a2b-0000-4000-8000-000000000001',
  name: 'web',
  owner: '0xabc',
  status: 'pending',
  desiredState: 'running',
  provider: 'docker',
  spec: { image: 'nginx:1' },
  progress: { stage: 'queued', percent: 0 },
  endpoints: [],
  waiting: { reason: 'insufficient_capacity', place: 2 },
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
}

describe('deployment output', () => {
  it('shows a waiting start with its place in the queue, in get and in ls', () => {
    const now = new Date('2026-01-01T00:01:00.000Z')
    assert.match(
      formatDeployment(waiting, now),
      /^Status: +pending \(waiting for capacity, #2 in the queue\)$/m,
    )
    assert.equal(formatDeploymentRow(waiting, now)[2], 'pending (waiting for capacity, #2 in the queue)')
    const { waiting: _, ...running } = { ...waiting, status: 'running' }
    assert.equal(formatDeploymentRow(running, now)[2], 'running')
  })
})
