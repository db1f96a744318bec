import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type { ProgressStage } from '../../src/domain/lifecycle.ts'
import {
  deploymentSpecSchema,
  type SingleImageSpecInput,
  singleImageSpecSchema,
} from '../../src/domain/spec.ts'
import type { ApplyContext, DeploymentTarget, LogLine, Provider } from '../../src/providers/provider.ts'
import { singleImage } from '../helpers/single-image.ts'

// What every provider must do, whatever it runs on. Each provider's test file calls
// `providerContract` with a factory; the Docker provider runs the same suite against the engine.

export interface ContractSubject {
  provider: Provider
  /** An image the provider can run that keeps running (for Docker: a locally built test image). */
  image: string
  /** Spec fields every target gets (swarm: small resources, whose reservations must all fit). */
  specDefaults?: Partial<SingleImageSpecInput>
  cleanup(): Promise<void>
}

/**
 * `services`: the provider offers multi-service deployments (`capabilities.services`), and the
 * suite checks them; a provider that does not is never given one (creation refuses them).
 */
export function providerContract(
  name: string,
  create: () => Promise<ContractSubject>,
  options: { services: boolean },
): void {
  describe(`provider contract: ${name}`, () => {
    let subject: ContractSubject
    let provider: Provider
    const created: string[] = []

    before(async () => {
      subject = await create()
      provider = subject.provider
    })
    after(async () => {
      for (const id of created) await provider.remove(id).catch(() => {})
      await subject.cleanup()
    })

    const target = (spec: Partial<SingleImageSpecInput> = {}, restartGeneration = 0): DeploymentTarget => {
      const id = randomUUID()
      created.push(id)
      return {
        id,
        ownerId: randomUUID(),
        restartGeneration,
        spec: singleImageSpecSchema.parse({
          name: `contract-${id.slice(0, 8)}`,
          image: subject.image,
          ...subject.specDefaults,
          ...spec,
        }),
      }
    }
    const context = (stages: ProgressStage[] = []): ApplyContext => ({
      signal: new AbortController().signal,
      progress: async (stage) => {
        stages.push(stage)
      },
    })

    it('answers ping', async () => {
      assert.equal(await provider.ping(), true)
    })

    it('applies a deployment: one running instance per replica, with progress stages in order', async () => {
      const t = target({ replicas: 2 })
      const stages: ProgressStage[] = []
      const observed = await provider.apply(t, context(stages))
      assert.deepEqual(observed.instances.map((i) => i.replica).sort(), [0, 1])
      assert.ok(observed.instances.every((i) => i.state === 'running' && i.deploymentId === t.id))
      const order: ProgressStage[] = ['pulling', 'creating', 'starting']
      const seen = stages.filter((s) => order.includes(s))
      assert.deepEqual(
        seen,
        [...seen].sort((a, b) => order.indexOf(a) - order.indexOf(b)),
        'stages in order',
      )
      assert.ok(seen.includes('starting'))
    })

    it('is idempotent: applying again creates nothing new', async () => {
      const t = target()
      const first = await provider.apply(t, context())
      const second = await provider.apply(t, context())
      assert.deepEqual(
        second.instances.map((i) => i.instanceId),
        first.instances.map((i) => i.instanceId),
      )
      const listed = (await provider.list()).filter((i) => i.deploymentId === t.id)
      assert.equal(listed.length, 1)
    })

    it('observes nothing for an unknown deployment', async () => {
      assert.equal(await provider.observe(randomUUID()), null)
    })

    it('lists instances with the deployment and owner they belong to (for adoption)', async () => {
      const t = target()
      await provider.apply(t, context())
      const mine = (await provider.list()).filter((i) => i.deploymentId === t.id)
      assert.equal(mine.length, 1)
      assert.equal(mine[0]?.ownerId, t.ownerId)
    })

    it('stops, restarts and removes', async () => {
      const t = target()
      await provider.apply(t, context())
      await provider.stop(t.id)
      assert.ok((await provider.observe(t.id))?.instances.every((i) => i.state !== 'running'))
      await provider.stop(t.id) // stopping twice is harmless
      await provider.restart(t.id)
      assert.ok((await provider.observe(t.id))?.instances.every((i) => i.state === 'running'))
      await provider.remove(t.id)
      assert.equal(await provider.observe(t.id), null)
      await provider.remove(t.id) // removing twice is harmless
    })

    it('starts a stopped deployment again on apply, without duplicating it', async () => {
      const t = target()
      const first = await provider.apply(t, context())
      await provider.stop(t.id)
      const again = await provider.apply(t, context())
      assert.equal(again.instances.length, 1)
      assert.equal(again.instances[0]?.state, 'running')
      assert.equal(again.instances[0]?.instanceId, first.instances[0]?.instanceId)
    })

    it('scales replicas down on apply', async () => {
      const t = target({ replicas: 3 })
      await provider.apply(t, context())
      const scaled = await provider.apply({ ...t, spec: { ...singleImage(t.spec), replicas: 1 } }, context())
      assert.deepEqual(
        scaled.instances.map((i) => i.replica),
        [0],
      )
    })

    it('gives logs with a tail, and stops following when aborted', async () => {
      const t = target()
      await provider.apply(t, context())
      const tail: LogLine[] = []
      for await (const line of await provider.logs(t.id, {
        tail: 1,
        follow: false,
        signal: new AbortController().signal,
      })) {
        tail.push(line)
      }
      assert.ok(tail.length <= 1)
      const abort = new AbortController()
      const followed: LogLine[] = []
      for await (const line of await provider.logs(t.id, { tail: 0, follow: true, signal: abort.signal })) {
        followed.push(line)
        abort.abort()
      }
      assert.equal(followed.length, 1, 'following yields new lines until aborted')
      assert.ok(followed[0]!.at instanceof Date)
    })

    it('reports usage', async () => {
      const t = target()
      await provider.apply(t, context())
      const usage = await provider.stats(t.id)
      for (const value of Object.values(usage)) assert.ok(Number.isFinite(value) && value >= 0)
    })

    it('says whether it runs services, as the suite was told', () => {
      assert.equal(provider.capabilities.services, options.services)
    })

    if (!options.services) return
    it('runs services: instances numbered across them, each labelled with its own, usage per service', async () => {
      const single = target()
      const spec = deploymentSpecSchema.parse({
        name: single.spec.name,
        services: [
          { name: 'db', image: subject.image, ...subject.specDefaults },
          { name: 'web', image: subject.image, ...subject.specDefaults, replicas: 2, dependsOn: ['db'] },
        ],
      })
      const ready: string[] = []
      const observed = await provider.apply(
        { ...single, spec },
        {
          ...context(),
          ready: async (service) => {
            ready.push(service)
            return true
          },
        },
      )
      assert.deepEqual(observed.instances.map((i) => [i.replica, i.service, i.state]).sort(), [
        [0, 'db', 'running'],
        [1, 'web', 'running'],
        [2, 'web', 'running'],
      ])
      const usage = await provider.stats(single.id)
      assert.deepEqual(Object.keys(usage.services ?? {}).sort(), ['db', 'web'])
      // The engine-backed providers wait for db before web; one that starts everything at once need not.
      assert.ok(ready.every((service) => service === 'db'))
    })
  })
}
