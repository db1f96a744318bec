import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { type Caller, createTestApp } from './helpers/http-app.ts'
import { createStack, type Stack } from './helpers/stack.ts'
import { waitFor } from './helpers/wait.ts'

// Admission against a provider's capacity, on a simulated machine of 2 CPUs: a start that does
// not fit waits in `pending` with reason insufficient_capacity and its place in the queue, starts
// in turn when room frees, and the machine is never asked for more than it has. A spec larger than
// the machine is refused at once. (On the real engine: test/docker/capacity-docker.ts.)

const spec = (name: string, cpus: number) => ({ name, image: 'app:1', resources: { cpus, memoryMb: 128 } })

interface View {
  id: string
  status: string
  waiting?: { reason: string; place?: number }
}

for (const kind of databaseKinds) {
  describe(`capacity admission (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let alice: Caller
    let bob: Caller

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database, {
        flags: { providers: { simulated: { cpus: 2, memoryMb: 4096 } } },
      })
      const app = await createTestApp(database, stack)
      alice = await app.user(`0x${'a3'.repeat(20)}`)
      bob = await app.user(`0x${'b4'.repeat(20)}`)
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    const view = async (call: Caller, id: string) => (await call('GET', `/v1/deployments/${id}`)).body as View
    const create = async (call: Caller, name: string, cpus: number) => {
      const reply = await call('POST', '/v1/deployments', spec(name, cpus))
      assert.equal(reply.status, 202, JSON.stringify(reply.body))
      return reply.body.id as string
    }
    /** CPUs of the deployments holding the machine now, in thousandths. */
    const held = async () => {
      const [row] = await database.query<{ milli: string }>(
        `select coalesce(sum((spec->'resources'->>'cpus')::numeric * 1000), 0) as milli
           from deployments where status not in ('pending', 'awaiting_payment', 'stopped', 'failed', 'deleted')`,
        [],
      )
      return Number(row!.milli)
    }

    it('queues starts that do not fit, in turn, and starts them as room frees, never over the machine', async () => {
      const big = await create(alice, 'big', 1.5)
      await waitFor('big running', async () => (await view(alice, big)).status === 'running')

      const second = await create(bob, 'second', 1)
      await waitFor('second waiting', async () => (await view(bob, second)).waiting !== undefined)
      const waiting = await view(bob, second)
      assert.equal(waiting.status, 'pending')
      assert.deepEqual(waiting.waiting, { reason: 'insufficient_capacity', place: 1 })
      const events = (await bob('GET', `/v1/deployments/${second}/events`)).body.items as Array<{
        type: string
        message?: string
      }>
      const said = events.find((e) => e.type === 'waiting_for_capacity')
      assert.match(said?.message ?? '', /needs 1 CPUs and 128 MB; 1\.5 CPUs and 128 MB of 2 CPUs/)

      // It would fit beside `big`, but `second` waits first.
      const small = await create(alice, 'small', 0.25)
      await waitFor('small queued behind', async () => (await view(alice, small)).waiting?.place === 2)
      const listed = (await alice('GET', '/v1/deployments')).body.items as View[]
      assert.deepEqual(
        listed.find((d) => d.id === small)?.waiting,
        { reason: 'insufficient_capacity', place: 2 },
        'the list shows the place too',
      )

      const tooBig = await alice('POST', '/v1/deployments', spec('huge', 3))
      assert.equal(tooBig.status, 422)
      assert.equal(tooBig.body.error.code, 'provider_rejected')
      assert.match(tooBig.body.error.message, /needs 3 CPUs .* at most 2 CPUs/)

      let peak = 0
      const watching = setInterval(() => void held().then((h) => (peak = Math.max(peak, h))), 20)
      try {
        assert.equal((await alice('POST', `/v1/deployments/${big}/stop`)).status, 202)
        await waitFor('second running', async () => (await view(bob, second)).status === 'running')
        await waitFor('small running', async () => (await view(alice, small)).status === 'running')
      } finally {
        clearInterval(watching)
      }
      assert.ok(peak <= 2000, `at most the machine's 2 CPUs were held (peak ${peak / 1000})`)
      assert.equal((await view(bob, second)).waiting, undefined)

      // Starting `big` again finds no room now: it waits, and says so.
      assert.equal((await alice('POST', `/v1/deployments/${big}/start`)).status, 202)
      await waitFor('big waits', async () => (await view(alice, big)).waiting?.place === 1)
      assert.equal((await view(alice, big)).status, 'pending')
    })
  })
}
