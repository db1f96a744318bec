import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type SingleImageSpecInput, singleImageSpecSchema } from '../../domain/spec.ts'
import {
  type ContainerPlan,
  createOptionsOf,
  endpointUrlOf,
  type HardeningOptions,
  hostPortsOf,
  instanceStateOf,
} from './container-spec.ts'
import { identityOf, LABEL, networkNameOf, READ_ONLY_ROOTFS_LABEL } from './labels.ts'

const hardening: HardeningOptions = {
  pidsLimit: 256,
  readOnlyRootfs: false,
  stopGraceSeconds: 10,
  hostIp: '127.0.0.1',
  logMaxSize: '10m',
  logMaxFiles: 3,
}
const deploymentId = '0b7e6c1a-1111-4222-8333-944445555666'
const ownerId = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d'

const plan = (
  spec: Partial<SingleImageSpecInput> = {},
  hostPorts: Record<string, number> = {},
): ContainerPlan => ({
  deploymentId,
  ownerId,
  replica: 1,
  restartGeneration: 3,
  network: 'net-id',
  hostPorts,
  spec: singleImageSpecSchema.parse({ name: 'web', image: 'example/app:1', ...spec }),
})

describe('container create options', () => {
  it('locks every container down and applies the limits', () => {
    const options = createOptionsOf(plan({ resources: { cpus: 1.5, memoryMb: 128 } }), hardening)
    const host = options.HostConfig!
    assert.equal(options.name, `berth-${deploymentId}-1`)
    assert.equal(host.Privileged, false)
    assert.deepEqual(host.CapDrop, ['ALL'])
    assert.equal(host.CapAdd, undefined)
    assert.deepEqual(host.SecurityOpt, ['no-new-privileges'])
    assert.equal(host.PidsLimit, 256)
    assert.equal(host.Memory, 128 * 1024 * 1024)
    assert.equal(host.MemorySwap, host.Memory)
    assert.equal(host.NanoCpus, 1_500_000_000)
    assert.equal(host.NetworkMode, 'net-id')
    assert.equal(host.IpcMode, 'private')
    assert.equal(host.PidMode, undefined)
    assert.equal(host.Binds, undefined)
    assert.equal(host.ReadonlyRootfs, false)
    assert.equal(host.Tmpfs, undefined)
    assert.deepEqual(host.RestartPolicy, { Name: 'no' })
    assert.deepEqual(Object.keys(options.NetworkingConfig!.EndpointsConfig!), ['net-id'])
  })

  it('adds back only the capabilities the spec lists, after dropping all', () => {
    assert.equal(createOptionsOf(plan(), hardening).HostConfig?.CapAdd, undefined)
    const options = createOptionsOf(
      plan({ capAdd: [{ capability: 'NET_BIND_SERVICE', reason: 'port 80' }] }),
      hardening,
    )
    assert.deepEqual(options.HostConfig?.CapDrop, ['ALL'])
    assert.deepEqual(options.HostConfig?.CapAdd, ['NET_BIND_SERVICE'])
  })

  it('labels the container with its identity, the spec’s labels under user., none in berth’s namespace', () => {
    const options = createOptionsOf(
      plan({
        labels: {
          team: 'a',
          'traefik.http.routers.x.rule': 'Host(`bank.example`)',
          'berth.managed': 'false',
          [READ_ONLY_ROOTFS_LABEL]: 'true',
        },
      }),
      hardening,
    )
    assert.deepEqual(options.Labels, {
      'user.team': 'a',
      'user.traefik.http.routers.x.rule': 'Host(`bank.example`)',
      [LABEL.managed]: 'true',
      [LABEL.deployment]: deploymentId,
      [LABEL.owner]: ownerId,
      [LABEL.replica]: '1',
      [LABEL.restartGeneration]: '3',
    })
    assert.deepEqual(identityOf(options.Labels), {
      deploymentId,
      ownerId,
      replica: 1,
      restartGeneration: 3,
      service: null,
    })
  })

  it('makes the root filesystem read-only, with a tmpfs /tmp, by label or by default; a label cannot undo the default', () => {
    const byLabel = createOptionsOf(plan({ labels: { [READ_ONLY_ROOTFS_LABEL]: 'true' } }), hardening)
    assert.equal(byLabel.HostConfig!.ReadonlyRootfs, true)
    assert.match(byLabel.HostConfig!.Tmpfs!['/tmp']!, /size=/)
    const byDefault = createOptionsOf(plan(), { ...hardening, readOnlyRootfs: true })
    assert.equal(byDefault.HostConfig!.ReadonlyRootfs, true)
    const optedOut = createOptionsOf(plan({ labels: { [READ_ONLY_ROOTFS_LABEL]: 'false' } }), {
      ...hardening,
      readOnlyRootfs: true,
    })
    assert.equal(optedOut.HostConfig!.ReadonlyRootfs, true, 'the operator’s read-only default holds')
    const notAsked = createOptionsOf(plan(), hardening)
    assert.equal(notAsked.HostConfig!.ReadonlyRootfs, false)
  })

  it('publishes each port on its allocated host port, bound to the host IP', () => {
    const options = createOptionsOf(
      plan(
        { ports: [{ containerPort: 80 }, { containerPort: 53, protocol: 'udp' }] },
        { '1/80/tcp': 19001, '1/53/udp': 19002 },
      ),
      hardening,
    )
    assert.deepEqual(options.ExposedPorts, { '80/tcp': {}, '53/udp': {} })
    assert.deepEqual(options.HostConfig!.PortBindings, {
      '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '19001' }],
      '53/udp': [{ HostIp: '127.0.0.1', HostPort: '19002' }],
    })
    assert.deepEqual(hostPortsOf(1, options.HostConfig!.PortBindings), {
      '1/80/tcp': 19001,
      '1/53/udp': 19002,
    })
  })

  it('refuses to build a container whose port has no host port', () => {
    assert.throws(() => createOptionsOf(plan({ ports: [{ containerPort: 80 }] }), hardening), /1\/80\/tcp/)
  })

  it('passes command and environment through as arrays, never a shell line', () => {
    const options = createOptionsOf(plan({ command: ['httpd', '-f'], env: { A: '1; rm -rf /' } }), hardening)
    assert.deepEqual(options.Cmd, ['httpd', '-f'])
    assert.deepEqual(options.Env, ['A=1; rm -rf /'])
  })
})

describe('docker names and states', () => {
  it('names the owner network after the first 12 hex digits of the owner id', () => {
    assert.equal(networkNameOf(ownerId), 'berth-owner-a1b2c3d4e5f6')
  })

  it('maps engine states to instance states', () => {
    assert.equal(instanceStateOf('running'), 'running')
    assert.equal(instanceStateOf('restarting'), 'running')
    assert.equal(instanceStateOf('created'), 'created')
    assert.equal(instanceStateOf('paused'), 'stopped')
    assert.equal(instanceStateOf('exited'), 'exited')
    assert.equal(instanceStateOf('dead'), 'exited')
  })

  it('ignores containers without berth’s labels', () => {
    assert.equal(identityOf(undefined), null)
    assert.equal(identityOf({ [LABEL.deployment]: deploymentId }), null)
    assert.equal(
      identityOf({ [LABEL.managed]: 'true', [LABEL.deployment]: deploymentId, [LABEL.owner]: ownerId }),
      null,
    )
  })

  it('builds endpoint URLs from the public host', () => {
    assert.equal(endpointUrlOf('apps.example', 19001, 'tcp'), 'http://apps.example:19001')
    assert.equal(endpointUrlOf('::1', 19001, 'udp'), 'udp://[::1]:19001')
  })

  it("labels a service's instance with its service and gives it the service's names on the network", () => {
    const options = createOptionsOf({ ...plan(), service: 'db' }, hardening)
    assert.equal(options.Labels?.[LABEL.service], 'db')
    assert.deepEqual(identityOf(options.Labels)?.service, 'db')
    assert.deepEqual(options.NetworkingConfig?.EndpointsConfig?.['net-id']?.Aliases, ['db', 'db.web'])
    const single = createOptionsOf(plan(), hardening)
    assert.equal(single.Labels?.[LABEL.service], undefined)
    assert.deepEqual(single.NetworkingConfig?.EndpointsConfig?.['net-id']?.Aliases, ['web'])
  })
})
