import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { createPortAllocator, type PortRequest } from '../src/control/ports/port-allocator.ts'
import { deployments } from '../src/db/schema/index.ts'
import { deploymentSpecSchema } from '../src/domain/spec.ts'
import { ProviderError } from '../src/providers/provider.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { createAccount } from './helpers/stack.ts'

// Host port allocation on both databases: unique under concurrency, stable per key, freed on
// release, a clear error when the range runs out, and blocked ports skipped.

for (const kind of databaseKinds) {
  describe(`port allocator (${kind})`, () => {
    let database: TestDatabase
    let ownerId: string
    before(async () => {
      database = await openTestDatabase(kind)
      ownerId = await createAccount(database)
    })
    after(() => database.dispose())

    /** A minimal deployment row: allocations reference one. */
    const newDeployment = async (): Promise<string> => {
      const id = randomUUID()
      await database.db.insert(deployments).values({
        id,
        ownerId,
        name: `d-${id.slice(0, 8)}`,
        spec: deploymentSpecSchema.parse({ name: 'web', image: 'busybox' }),
        provider: 'docker',
        status: 'pending',
        desiredState: 'running',
        stage: 'queued',
        percent: 0,
      })
      return id
    }
    const request = (deploymentId: string, replica = 0, containerPort = 80): PortRequest => ({
      deploymentId,
      replica,
      containerPort,
      protocol: 'tcp',
    })

    it('gives 200 concurrent allocations 200 distinct ports from the range', async () => {
      const ports = createPortAllocator(database, { rangeStart: 20000, rangeEnd: 20999, hostIp: '127.0.0.1' })
      const id = await newDeployment()
      const got = await Promise.all(
        Array.from({ length: 200 }, (_, i) => ports.allocate(request(id, i % 20, 1000 + Math.floor(i / 20)))),
      )
      assert.equal(new Set(got).size, 200)
      for (const port of got) assert.ok(port >= 20000 && port <= 20999, `${port} in range`)
    })

    it('returns the same port for the same key, also concurrently', async () => {
      const ports = createPortAllocator(database, { rangeStart: 21000, rangeEnd: 21999, hostIp: '127.0.0.1' })
      const id = await newDeployment()
      const got = await Promise.all(Array.from({ length: 10 }, () => ports.allocate(request(id))))
      assert.equal(new Set(got).size, 1)
      assert.equal(await ports.allocate(request(id)), got[0])
      // Another protocol of the same container port is another key.
      assert.notEqual(await ports.allocate({ ...request(id), protocol: 'udp' }), undefined)
    })

    it('fails clearly when the range is exhausted, and release frees the ports', async () => {
      const ports = createPortAllocator(database, { rangeStart: 22000, rangeEnd: 22002, hostIp: '127.0.0.1' })
      const first = await newDeployment()
      const second = await newDeployment()
      const taken = await Promise.all([0, 1, 2].map((replica) => ports.allocate(request(first, replica))))
      assert.deepEqual([...taken].sort(), [22000, 22001, 22002])
      await assert.rejects(ports.allocate(request(second)), (error: unknown) => {
        assert.ok(error instanceof ProviderError)
        assert.equal(error.kind, 'permanent')
        assert.equal(error.eventType, 'ports_exhausted')
        assert.match(error.message, /no free host port in 22000-22002/)
        return true
      })
      await ports.release(first)
      assert.equal(await ports.allocate(request(second)), 22000)
    })

    it('keeps a blocked port out of the range and gives its key another one', async () => {
      const ports = createPortAllocator(database, { rangeStart: 23000, rangeEnd: 23009, hostIp: '127.0.0.1' })
      const id = await newDeployment()
      const first = await ports.allocate(request(id))
      assert.equal(first, 23000)
      await ports.block(first, 'tcp')
      const next = await ports.allocate(request(id))
      assert.equal(next, 23001)
      const other = await newDeployment()
      assert.equal(await ports.allocate(request(other)), 23002, 'the blocked port is not handed out')
      // Released or not, the block stays until it expires.
      await ports.release(id)
      assert.equal(await ports.allocate(request(other, 1)), 23001)
    })

    it('tries a blocked port again once the block expires', async () => {
      const ports = createPortAllocator(database, {
        rangeStart: 24000,
        rangeEnd: 24009,
        hostIp: '127.0.0.1',
        blockedForMs: 0,
      })
      const id = await newDeployment()
      await ports.block(24000, 'tcp')
      assert.equal(await ports.allocate(request(id)), 24000)
    })

    it('keeps host addresses apart', async () => {
      const local = createPortAllocator(database, { rangeStart: 25000, rangeEnd: 25009, hostIp: '127.0.0.1' })
      const other = createPortAllocator(database, { rangeStart: 25000, rangeEnd: 25009, hostIp: '127.0.0.2' })
      const [a, b] = [await newDeployment(), await newDeployment()]
      assert.equal(await local.allocate(request(a)), 25000)
      assert.equal(await other.allocate(request(b)), 25000)
    })
  })
}
