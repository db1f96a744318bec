import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { singleImageSpecSchema } from '../../domain/spec.ts'
import { type ServicePlan, type SwarmHardening, serviceSpecOf } from './service-spec.ts'
import { instanceOfService, type SwarmNode, type SwarmService, type SwarmTask } from './tasks.ts'

const hardening: SwarmHardening = {
  pidsLimit: 128,
  readOnlyRootfs: false,
  stopGraceSeconds: 5,
  publishMode: 'host',
  logMaxSize: '10m',
  logMaxFiles: 3,
}

function plan(spec: Record<string, unknown> = {}, extra: Partial<ServicePlan> = {}): ServicePlan {
  return {
    deploymentId: 'd1',
    ownerId: 'o1',
    replica: 1,
    restartGeneration: 2,
    spec: singleImageSpecSchema.parse({ name: 'web', image: 'example/app:1', ...spec }),
    network: 'net1',
    publishedPorts: {},
    secrets: [],
    volumes: [],
    volumeDriver: 'local',
    forceUpdate: 3,
    replicas: 1,
    constraints: ['node.role==worker'],
    ...extra,
  }
}

describe('swarm service spec', () => {
  it('drops every capability, limits and reserves alike, and leaves restarts to berth', () => {
    const spec = serviceSpecOf(plan({ resources: { cpus: 1.5, memoryMb: 256 } }), hardening)
    const template = spec.TaskTemplate
    assert.equal(spec.Name, 'berth-d1-1')
    assert.deepEqual(template.ContainerSpec.CapabilityDrop, ['ALL'])
    assert.deepEqual(template.ContainerSpec.Privileges, { NoNewPrivileges: true })
    assert.deepEqual(template.Resources.Limits, { NanoCPUs: 1.5e9, MemoryBytes: 256 * 2 ** 20, Pids: 128 })
    assert.deepEqual(template.Resources.Reservations, { NanoCPUs: 1.5e9, MemoryBytes: 256 * 2 ** 20 })
    assert.equal(template.RestartPolicy.Condition, 'none')
    assert.equal(template.ForceUpdate, 3)
    assert.equal(spec.Labels['berth.restart-generation'], '2')
    assert.equal(spec.UpdateConfig.Order, 'stop-first')
  })

  it('mounts secret env values as files and points NAME_FILE at them', () => {
    const spec = serviceSpecOf(
      plan(
        { env: { TOKEN: 'hidden', MODE: 'x' }, secretEnv: ['TOKEN'] },
        { secrets: [{ envName: 'TOKEN', secretId: 's1', secretName: 'berth-d1-abc' }] },
      ),
      hardening,
    )
    const container = spec.TaskTemplate.ContainerSpec
    assert.deepEqual(container.Env, ['MODE=x', 'TOKEN_FILE=/run/secrets/TOKEN'])
    assert.equal(container.Secrets[0]?.File.Name, 'TOKEN')
    assert.ok(!JSON.stringify(spec).includes('hidden'), 'the value itself is nowhere in the spec')
  })

  it("adds the operator's constraints, the spec's node labels, the replica's spread value and its pin", () => {
    const spec = serviceSpecOf(
      plan(
        { placement: { nodeLabels: { region: 'eu' }, spread: 'zone' } },
        { pinnedNode: 'n1', spreadValue: 'b' },
      ),
      hardening,
    )
    assert.deepEqual(spec.TaskTemplate.Placement.Constraints, [
      'node.role==worker',
      'node.labels.region==eu',
      'node.labels.zone==b',
      'node.id==n1',
    ])
  })

  it('publishes in host mode with DNS round robin, and through the mesh with a virtual IP', () => {
    const ports = { publishedPorts: { '1/80/tcp': 29100 } }
    const host = serviceSpecOf(plan({ ports: [{ containerPort: 80 }] }, ports), hardening)
    assert.deepEqual(host.EndpointSpec, {
      Mode: 'dnsrr',
      Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 29100, PublishMode: 'host' }],
    })
    const ingress = serviceSpecOf(plan({ ports: [{ containerPort: 80 }] }, ports), {
      ...hardening,
      publishMode: 'ingress',
    })
    assert.equal(ingress.EndpointSpec.Mode, 'vip')
    assert.equal(ingress.EndpointSpec.Ports[0]?.PublishMode, 'ingress')
  })
})

describe('swarm instances', () => {
  const service = (replicas = 1): SwarmService => ({
    ID: 's1',
    Version: { Index: 1 },
    Spec: {
      Name: 'berth-d1-0',
      Labels: {
        'berth.managed': 'swarm',
        'berth.deployment': 'd1',
        'berth.owner': 'o1',
        'berth.replica': '0',
      },
      Mode: { Replicated: { Replicas: replicas } },
      EndpointSpec: { Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 29100 }] },
    },
  })
  const task = (state: string, desired: string, exitCode?: number): SwarmTask => ({
    ID: 't1',
    ServiceID: 's1',
    NodeID: 'n1',
    DesiredState: desired,
    CreatedAt: '2026-01-01T00:00:00Z',
    Status: { State: state, ...(exitCode === undefined ? {} : { ContainerStatus: { ExitCode: exitCode } }) },
  })
  const nodes = (state: string) =>
    new Map<string, SwarmNode>([['n1', { ID: 'n1', Status: { State: state, Addr: '10.0.0.5' } }]])
  const hostOf = (node: SwarmNode | undefined) => node?.Status?.Addr

  it('is running on the node that runs its task, reached at that node', () => {
    const instance = instanceOfService(service(), [task('running', 'running')], nodes('ready'), hostOf)
    assert.equal(instance?.state, 'running')
    assert.deepEqual(instance?.addresses, [
      { containerPort: 80, protocol: 'tcp', host: '10.0.0.5', port: 29100 },
    ])
  })

  it('has exited with its code when the workload ended', () => {
    const instance = instanceOfService(service(), [task('failed', 'shutdown', 3)], nodes('ready'), hostOf)
    assert.equal(instance?.state, 'exited')
    assert.equal(instance?.exitCode, 3)
  })

  it('is missing, not exited, when its node went down or Swarm shut its task down', () => {
    assert.equal(instanceOfService(service(), [task('running', 'running')], nodes('down'), hostOf), null)
    assert.equal(instanceOfService(service(), [task('running', 'shutdown')], nodes('down'), hostOf), null)
    assert.equal(instanceOfService(service(), [task('orphaned', 'shutdown')], nodes('ready'), hostOf), null)
  })

  it('is stopped while scaled to nothing', () => {
    assert.equal(instanceOfService(service(0), [], nodes('ready'), hostOf)?.state, 'stopped')
  })
})
