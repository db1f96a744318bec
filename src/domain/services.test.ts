import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { hourlyMicroUsd } from '../payments/pricing.ts'
import { demandOf } from '../quotas/quota-limits.ts'
import { resourceDemandOf } from './resources.ts'
import {
  checkOfIndex,
  healthTimingOf,
  instanceCountOf,
  instanceNameOf,
  startGroupsOf,
  unitsOf,
} from './services.ts'
import { deploymentSpecSchema } from './spec.ts'

const app = {
  name: 'shop',
  labels: { team: 'a' },
  services: [
    {
      name: 'db',
      image: 'postgres:16',
      ports: [{ containerPort: 5432 }],
      healthCheck: { type: 'tcp', port: 5432, intervalSeconds: 5, healthyThreshold: 2 },
      volumes: [{ name: 'data', mountPath: '/var/lib/postgresql/data', sizeMb: 1024 }],
      resources: { cpus: 1, memoryMb: 1024 },
    },
    {
      name: 'api',
      image: 'app:1',
      replicas: 2,
      dependsOn: ['db'],
      ports: [{ containerPort: 8080 }],
      healthCheck: { type: 'http', port: 8080, path: '/ok', intervalSeconds: 10, unhealthyThreshold: 5 },
    },
    { name: 'worker', image: 'app:1', command: ['work'], dependsOn: ['db', 'api'] },
  ],
}

const issuesOf = (input: unknown) => {
  const parsed = deploymentSpecSchema.safeParse(input)
  assert.equal(parsed.success, false)
  return parsed.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
}

describe('multi-service specs', () => {
  it('numbers instances across services and gives each its own workload with the deployment fields', () => {
    const spec = deploymentSpecSchema.parse(app)
    assert.equal(instanceCountOf(spec), 4)
    const units = unitsOf(spec)
    assert.deepEqual(
      units.map((u) => [u.index, u.service, u.replica]),
      [
        [0, 'db', 0],
        [1, 'api', 0],
        [2, 'api', 1],
        [3, 'worker', 0],
      ],
    )
    assert.equal(units[1]!.spec.image, 'app:1')
    assert.equal(units[1]!.spec.name, 'shop', "an instance keeps the deployment's name")
    assert.deepEqual(units[3]!.spec.labels, { team: 'a' })
    assert.deepEqual(units[0]!.spec.resources, { cpus: 1, memoryMb: 1024, gpus: 0, diskMb: 1024 })
    assert.equal(instanceNameOf(spec, 2), 'service api replica 1')
    assert.equal(checkOfIndex(spec, 3), undefined)
    assert.equal(checkOfIndex(spec, 2)?.path, '/ok')
  })

  it('starts services after those they depend on', () => {
    const groups = startGroupsOf(deploymentSpecSchema.parse(app))
    assert.deepEqual(
      groups.map((g) => g.map((w) => w.service)),
      [['db'], ['api'], ['worker']],
    )
  })

  it('judges the deployment at the shortest interval and the largest thresholds', () => {
    assert.deepEqual(healthTimingOf(deploymentSpecSchema.parse(app)), {
      intervalSeconds: 5,
      healthyThreshold: 2,
      unhealthyThreshold: 5,
    })
  })

  it('costs, holds and weighs what its services do together', () => {
    const spec = deploymentSpecSchema.parse(app)
    const pricing = {
      cpuHourMicroUsd: 10_000,
      memoryGibHourMicroUsd: 5_000,
      gpuHourMicroUsd: 0,
      diskGibMonthMicroUsd: 0,
      billingIntervalSeconds: 60,
    }
    const alone = ({ dependsOn: _, ...service }: (typeof app.services)[number]) =>
      hourlyMicroUsd(deploymentSpecSchema.parse(service), pricing as never)
    const sum = app.services.reduce((total, s) => total + alone(s), 0n)
    assert.equal(hourlyMicroUsd(spec, pricing as never), sum)
    assert.deepEqual(resourceDemandOf(spec), {
      milliCpus: 1000 + 2 * 500 + 500,
      memoryMb: 1024 + 2 * 256 + 256,
    })
    const held = demandOf(spec)
    assert.equal(held.deployments, 1)
    assert.equal(held.replicas, 4)
    assert.equal(held.hostPorts, 3)
    assert.equal(held.volumes, 1)
  })

  it('keeps single-image specs as they were', () => {
    const spec = deploymentSpecSchema.parse({ name: 'web', image: 'nginx:1.27', replicas: 2 })
    assert.equal(spec.services, undefined)
    assert.deepEqual(
      unitsOf(spec).map((u) => [u.index, u.service]),
      [
        [0, null],
        [1, null],
      ],
    )
  })

  it('names what is wrong with services', () => {
    const bad = (change: (s: typeof app) => unknown) => issuesOf(change(structuredClone(app)))
    assert.deepEqual(
      bad((s) => ({ ...s, image: 'nginx' })),
      [': Unrecognized key: "image"'],
      'a workload field beside services is unknown',
    )
    assert.match(
      bad((s) => ({ ...s, services: [s.services[0], s.services[0]] })).join(),
      /services\.1\.name: service db is listed twice/,
    )
    assert.match(
      bad((s) => ({ ...s, services: [s.services[0], { ...s.services[1], dependsOn: ['cache'] }] })).join(),
      /services\.1\.dependsOn\.0: no service named cache/,
    )
    assert.match(
      bad((s) => ({
        ...s,
        services: [{ ...s.services[0], dependsOn: ['worker'] }, s.services[1], s.services[2]],
      })).join(),
      /services: services depend on each other in a circle: db → worker → db/,
    )
    assert.match(
      bad((s) => ({
        ...s,
        services: [s.services[0], { ...s.services[1], volumes: [{ name: 'data', mountPath: '/d' }] }],
      })).join(),
      /volume data already belongs to service db/,
    )
    assert.match(
      bad((s) => ({ ...s, services: [{ ...s.services[0], healthCheck: { type: 'tcp', port: 1 } }] })).join(),
      /services\.0\.healthCheck\.port: port 1 is not one of the service's tcp ports/,
    )
    assert.match(bad((s) => ({ ...s, services: [] })).join(), /services/)
  })
})
