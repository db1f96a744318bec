import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { deploymentSpecSchema } from '../domain/spec.ts'
import { createSimulatedProvider } from '../providers/simulated/simulated-provider.ts'
import { isServiceReady } from './service-ready.ts'

// Whether a service others depend on is ready, on the simulated provider (which judges health
// itself): not before it runs, yes once it runs, and a deploy that waited past its deadline fails.

const spec = deploymentSpecSchema.parse({
  name: 'shop',
  services: [
    { name: 'db', image: 'db:1', replicas: 2 },
    { name: 'web', image: 'web:1', dependsOn: ['db'] },
  ],
})

describe('isServiceReady', () => {
  const provider = createSimulatedProvider({
    stateDir: mkdtempSync(join(tmpdir(), 'berth-ready-')),
    pullMs: 0,
    createMs: 0,
    startMs: 0,
  })
  const now = new Date('2030-01-01T00:00:00Z')
  const ask = (deploymentId: string, deadline: Date, service = 'db') =>
    isServiceReady({ provider, deploymentId, spec, service, deadline, now: () => now })

  it('is not ready before its instances run, and fails the deploy once the deadline has passed', async () => {
    const later = new Date(now.getTime() + 60_000)
    assert.equal(await ask('d0000000-0000-4000-8000-000000000001', later), false)
    await assert.rejects(
      ask('d0000000-0000-4000-8000-000000000001', now),
      (error: Error & { eventType?: string }) => {
        assert.equal(error.eventType, 'dependency_not_ready')
        assert.match(error.message, /service db was not ready by .* \(not running yet\)/)
        return true
      },
    )
  })

  it('is ready once every replica runs healthy', async () => {
    const id = 'd0000000-0000-4000-8000-000000000002'
    await provider.apply(
      { id, ownerId: 'o0000000-0000-4000-8000-000000000001', spec, restartGeneration: 0 },
      { signal: new AbortController().signal, progress: async () => {} },
    )
    assert.equal(await ask(id, now), true)
    await assert.rejects(ask(id, now, 'cache'), /no service named cache/)
  })
})
