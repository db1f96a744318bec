import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { systemSource } from '../src/domain/actor.ts'
import { deploymentSpecSchema } from '../src/domain/spec.ts'
import { createIdentity } from '../src/identity/create-identity.ts'
import { addUsage, demandOf, valuesOf } from '../src/quotas/quota-limits.ts'
import { createQuotaStore } from '../src/quotas/quota-store.ts'
import { createQuotas } from '../src/quotas/quotas.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { type Caller, createTestApp, type TestApp } from './helpers/http-app.ts'
import { createAccount, createStack, type Stack } from './helpers/stack.ts'
import { testVault } from './helpers/vault.ts'
import { waitFor } from './helpers/wait.ts'

// Per-account quotas: what one wallet may hold at once. Over a limit, a create is refused with
// 403 quota_exceeded naming the limit, its value and the use, and nothing is written; stopped
// deployments keep their share; the operator reads and overrides any account's limits.

const ADMIN_TOKEN = 'quota-test-admin-token-0123456789'
const quotas = {
  deployments: 3,
  replicas: 4,
  hostPorts: 3,
  cpus: 2,
  memoryMb: 4096,
  diskMb: 100_000,
  volumes: 2,
  apiKeys: 2,
}
const wallet = (n: number) => `0x${n.toString(16).padStart(2, '0').repeat(20)}`
const spec = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  image: 'app:1',
  resources: { cpus: 0.5, memoryMb: 256 },
  ...extra,
})

for (const kind of databaseKinds) {
  describe(`quotas (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp
    let admin: Caller

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database, { flags: { quotas, adminToken: ADMIN_TOKEN } })
      app = await createTestApp(database, stack)
      admin = app.admin()
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    it('refuses a create over the host port quota, naming it, and writes nothing', async () => {
      const call = await app.user(wallet(1))
      const first = await call(
        'POST',
        '/v1/deployments',
        spec('web', { ports: [{ containerPort: 80 }, { containerPort: 443 }] }),
      )
      assert.equal(first.status, 202, JSON.stringify(first.body))
      const second = await call(
        'POST',
        '/v1/deployments',
        spec('api', { ports: [{ containerPort: 80 }, { containerPort: 81 }] }),
      )
      assert.equal(second.status, 403)
      assert.equal(second.body.error.code, 'quota_exceeded')
      assert.match(second.body.error.message, /host ports limit is 3, 2 in use, this asks for 2 more/)
      assert.deepEqual(second.body.error.details, { quota: 'hostPorts', limit: 3, used: 2, requested: 2 })
      const list = await call('GET', '/v1/deployments')
      assert.deepEqual(
        list.body.items.map((d: { name: string }) => d.name),
        ['web'],
      )
    })

    it('counts a stopped deployment until it is deleted', async () => {
      const call = await app.user(wallet(2))
      const created = await call(
        'POST',
        '/v1/deployments',
        spec('web', { ports: [{ containerPort: 80 }, { containerPort: 443 }] }),
      )
      const id = created.body.id
      await waitFor(
        'running',
        async () => (await call('GET', `/v1/deployments/${id}`)).body.status === 'running',
      )
      assert.equal((await call('POST', `/v1/deployments/${id}/stop`)).status, 202)
      await waitFor(
        'stopped',
        async () => (await call('GET', `/v1/deployments/${id}`)).body.status === 'stopped',
      )
      const refused = await call(
        'POST',
        '/v1/deployments',
        spec('other', { ports: [{ containerPort: 80 }, { containerPort: 81 }] }),
      )
      assert.equal(refused.status, 403)
      assert.equal(refused.body.error.details.quota, 'hostPorts')

      assert.equal((await call('DELETE', `/v1/deployments/${id}`)).status, 202)
      await waitFor(
        'deleted',
        async () => (await call('GET', `/v1/deployments/${id}`)).body.status === 'deleted',
      )
      const admitted = await call(
        'POST',
        '/v1/deployments',
        spec('other', { ports: [{ containerPort: 80 }, { containerPort: 81 }] }),
      )
      assert.equal(admitted.status, 202, JSON.stringify(admitted.body))
    })

    it('lets exactly the quota through when many creates arrive at once', async () => {
      const call = await app.user(wallet(3))
      const replies = await Promise.all(
        Array.from({ length: 12 }, (_, i) => call('POST', '/v1/deployments', spec(`burst-${i}`))),
      )
      const statuses = replies.map((r) => r.status).sort()
      assert.deepEqual(statuses, [202, 202, 202, ...Array(9).fill(403)])
      for (const reply of replies.filter((r) => r.status === 403)) {
        assert.equal(reply.body.error.details.quota, 'deployments')
      }
      assert.equal((await call('GET', '/v1/deployments')).body.items.length, 3)
    })

    it('counts CPUs and memory per replica', async () => {
      const call = await app.user(wallet(4))
      const refused = await call(
        'POST',
        '/v1/deployments',
        spec('big', { replicas: 2, resources: { cpus: 1.5, memoryMb: 256 } }),
      )
      assert.equal(refused.status, 403)
      assert.deepEqual(refused.body.error.details, { quota: 'cpus', limit: 2, used: 0, requested: 3 })
      const memory = await call(
        'POST',
        '/v1/deployments',
        spec('fat', { replicas: 2, resources: { cpus: 0.5, memoryMb: 4096 } }),
      )
      assert.equal(memory.body.error.details.quota, 'memoryMb')
    })

    it('shows an account its limits and use, and lets the operator override them', async () => {
      const address = wallet(5)
      const call = await app.user(address)
      await call('POST', '/v1/deployments', spec('one', { replicas: 2, ports: [{ containerPort: 80 }] }))
      const own = await call('GET', '/v1/quotas')
      assert.equal(own.status, 200)
      assert.deepEqual(own.body.limits, quotas)
      assert.deepEqual(own.body.overrides, {})
      assert.equal(own.body.usage.deployments, 1)
      assert.equal(own.body.usage.replicas, 2)
      assert.equal(own.body.usage.hostPorts, 2)
      assert.equal(own.body.usage.cpus, 1)

      assert.equal(
        (await call('PUT', `/v1/admin/accounts/${address}/quotas`, { deployments: 99 })).status,
        403,
      )
      const raised = await admin('PUT', `/v1/admin/accounts/${address}/quotas`, { hostPorts: 10, cpus: 8.5 })
      assert.equal(raised.status, 200, JSON.stringify(raised.body))
      assert.deepEqual(raised.body.overrides, { hostPorts: 10, cpus: 8.5 })
      assert.equal(raised.body.limits.cpus, 8.5)
      const admitted = await call(
        'POST',
        '/v1/deployments',
        spec('two', { ports: [{ containerPort: 80 }, { containerPort: 81 }] }),
      )
      assert.equal(admitted.status, 202, JSON.stringify(admitted.body))

      const reset = await admin('PUT', `/v1/admin/accounts/${address}/quotas`, { hostPorts: null })
      assert.deepEqual(reset.body.overrides, { cpus: 8.5 })
      assert.equal(reset.body.limits.hostPorts, quotas.hostPorts)
      const read = await admin('GET', `/v1/admin/accounts/${address}/quotas`)
      assert.deepEqual(read.body, { ...reset.body })
      assert.equal(read.body.usage.hostPorts, 4)
    })

    it('refuses bad overrides with 400 naming the field, and answers for a wallet it has not met', async () => {
      const bad = await admin('PUT', `/v1/admin/accounts/${wallet(6)}/quotas`, { deployments: -1 })
      assert.equal(bad.status, 400)
      assert.match(JSON.stringify(bad.body.error.details), /deployments/)
      const unknownKey = await admin('PUT', `/v1/admin/accounts/${wallet(6)}/quotas`, { gpus: 3 })
      assert.equal(unknownKey.status, 400)
      const unmet = await admin('GET', `/v1/admin/accounts/${wallet(7)}/quotas`)
      assert.equal(unmet.status, 200)
      assert.deepEqual(unmet.body.limits, quotas)
      assert.equal(unmet.body.usage.deployments, 0)
    })

    it('refuses an API key past the quota, and admits one again after a revoke', async () => {
      const accountId = await createAccount(database, wallet(8))
      const quota = createQuotas(database.db, stack.config.quotas)
      const identity = await createIdentity({
        db: database.db,
        config: stack.config,
        quotas: quota,
        vault: testVault(database.db),
      })
      const first = await identity.apiKeys.create(accountId, { name: 'a' }, systemSource('test'))
      await identity.apiKeys.create(accountId, { name: 'b' }, systemSource('test'))
      await assert.rejects(
        identity.apiKeys.create(accountId, { name: 'c' }, systemSource('test')),
        (error: Error & { code?: string }) => {
          assert.equal(error.code, 'quota_exceeded')
          assert.match(error.message, /API keys limit is 2, 2 in use/)
          return true
        },
      )
      await identity.apiKeys.revoke(accountId, first.id, systemSource('test'))
      await identity.apiKeys.create(accountId, { name: 'c' }, systemSource('test'))
      assert.equal((await identity.apiKeys.list(accountId)).length, 2)
    })

    it('sums usage in the database exactly as it prices a single spec', async () => {
      const accountId = await createAccount(database, wallet(9))
      const specs = [
        spec('a', {
          replicas: 3,
          ports: [{ containerPort: 80 }],
          resources: { cpus: 0.333, memoryMb: 100, diskMb: 7 },
        }),
        spec('b', {
          volumes: [
            { name: 'data', mountPath: '/data', sizeMb: 50 },
            { name: 'logs', mountPath: '/logs' },
          ],
        }),
        spec('c', { replicas: 2, resources: { cpus: 1.25, memoryMb: 64, diskMb: 0 } }),
      ].map((s) => deploymentSpecSchema.parse(s))
      for (const s of specs)
        await stack.store.create({
          source: systemSource('test'),
          ownerId: accountId,
          spec: s,
          provider: 'simulated',
        })
      const usage = await createQuotaStore(database.db, stack.config.quotas).usageOf(accountId)
      assert.deepEqual(valuesOf(usage), valuesOf(addUsage(...specs.map(demandOf))))
    })
  })
}
