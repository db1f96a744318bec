import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { deploymentSpecSchema, singleImageSpecSchema } from './spec.ts'

const minimal = { name: 'web', image: 'nginx:1.27' }

interface Issue {
  path: string
  message: string
  code: string
  keys?: string[]
}

function issuesOf(input: unknown): Issue[] {
  const result = deploymentSpecSchema.safeParse(input)
  assert.equal(result.success, false, `expected ${JSON.stringify(input)} to be rejected`)
  return result.error!.issues.map((issue) => ({
    path: issue.path.map(String).join('.'),
    message: issue.message,
    code: issue.code,
    keys: 'keys' in issue ? (issue.keys as string[]) : undefined,
  }))
}

/** The spec is rejected, and one of the issues points at `path`. */
function assertRejectedAt(input: unknown, path: string): Issue {
  const issues = issuesOf(input)
  const hit = issues.find((issue) => issue.path === path)
  assert.ok(hit, `expected an issue at "${path}", got ${JSON.stringify(issues)}`)
  assert.ok(hit.message.length > 0)
  return hit
}

/** Strict objects report an unknown key at the enclosing object's path, naming the key. */
function assertUnknownKey(input: unknown, objectPath: string, key: string): void {
  const issues = issuesOf(input)
  const hit = issues.find(
    (issue) => issue.code === 'unrecognized_keys' && issue.path === objectPath && issue.keys?.includes(key),
  )
  assert.ok(hit, `expected unknown key "${key}" at "${objectPath}", got ${JSON.stringify(issues)}`)
  assert.match(hit.message, new RegExp(key))
}

describe('deploymentSpecSchema: valid specs', () => {
  it('accepts a minimal spec and applies the defaults', () => {
    const spec = singleImageSpecSchema.parse(minimal)
    assert.equal(spec.name, 'web')
    assert.equal(spec.image, 'nginx:1.27')
    assert.equal(spec.replicas, 1)
  })

  it('gives a spec without resources the default resources', () => {
    const spec = singleImageSpecSchema.parse(minimal)
    assert.deepEqual(spec.resources, { cpus: 0.5, memoryMb: 256, gpus: 0, diskMb: 1024 })
  })

  it('fills resources defaults for the fields left out', () => {
    assert.deepEqual(singleImageSpecSchema.parse({ ...minimal, resources: {} }).resources, {
      cpus: 0.5,
      memoryMb: 256,
      gpus: 0,
      diskMb: 1024,
    })
    assert.deepEqual(singleImageSpecSchema.parse({ ...minimal, resources: { cpus: 2 } }).resources, {
      cpus: 2,
      memoryMb: 256,
      gpus: 0,
      diskMb: 1024,
    })
  })

  it('defaults a port protocol to tcp and keeps udp', () => {
    const spec = singleImageSpecSchema.parse({
      ...minimal,
      ports: [{ containerPort: 80 }, { containerPort: 53, protocol: 'udp' }],
    })
    assert.deepEqual(spec.ports, [
      { containerPort: 80, protocol: 'tcp' },
      { containerPort: 53, protocol: 'udp' },
    ])
  })

  it('accepts the same port number once per protocol', () => {
    const spec = singleImageSpecSchema.parse({
      ...minimal,
      ports: [{ containerPort: 53 }, { containerPort: 53, protocol: 'udp' }],
    })
    assert.equal(spec.ports?.length, 2)
  })

  it('accepts a full spec and keeps every field', () => {
    const full = {
      name: 'api-0',
      image: `registry.example:5000/team/app@sha256:${'a'.repeat(64)}`,
      command: ['serve', '--port', '8080'],
      env: { PORT: '8080', _SECRET: 'x', lower_case: '' },
      ports: [{ containerPort: 8080, protocol: 'tcp' }],
      resources: { cpus: 1.5, memoryMb: 1024, gpus: 1, diskMb: 2048 },
      healthCheck: {
        type: 'http',
        port: 8080,
        path: '/health',
        intervalSeconds: 5,
        timeoutSeconds: 2,
        healthyThreshold: 2,
        unhealthyThreshold: 4,
      },
      replicas: 3,
      labels: { 'team.example/owner': 'ops', tier: 'web' },
      provider: 'simulated',
    }
    assert.deepEqual(singleImageSpecSchema.parse(full), full)
    // What the API parses with: a spec without services is a single-image one, kept as it was.
    assert.deepEqual(deploymentSpecSchema.parse(full), full)
  })

  it('fills health check defaults', () => {
    const spec = singleImageSpecSchema.parse({ ...minimal, healthCheck: { type: 'tcp', port: 80 } })
    assert.deepEqual(spec.healthCheck, {
      type: 'tcp',
      port: 80,
      intervalSeconds: 10,
      timeoutSeconds: 3,
      healthyThreshold: 1,
      unhealthyThreshold: 3,
    })
  })

  it('accepts names at the limits of a DNS label', () => {
    for (const name of ['a', '0', 'a'.repeat(63), 'a-b', 'x1-2-3y']) {
      assert.equal(singleImageSpecSchema.parse({ ...minimal, name }).name, name)
    }
  })

  it('accepts replicas 1 and 100, ports 1 and 65535', () => {
    assert.equal(singleImageSpecSchema.parse({ ...minimal, replicas: 100 }).replicas, 100)
    const spec = singleImageSpecSchema.parse({
      ...minimal,
      ports: [{ containerPort: 1 }, { containerPort: 65535 }],
    })
    assert.equal(spec.ports?.length, 2)
  })
})

describe('deploymentSpecSchema: rejections name the field', () => {
  it('rejects unknown fields at the top level', () => {
    assertUnknownKey({ ...minimal, privileged: true }, '', 'privileged')
  })

  it('rejects a health check on a port the deployment does not publish over tcp', () => {
    const result = deploymentSpecSchema.safeParse({
      ...minimal,
      ports: [{ containerPort: 8080 }, { containerPort: 53, protocol: 'udp' }],
      healthCheck: { type: 'tcp', port: 53 },
    })
    assert.equal(result.success, false)
    assert.match(
      JSON.stringify(result.error?.issues),
      /port 53 is not one of the deployment's tcp ports \(8080\/tcp, 53\/udp\)/,
    )
    assert.ok(
      deploymentSpecSchema.safeParse({
        ...minimal,
        ports: [{ containerPort: 8080 }],
        healthCheck: { type: 'http', port: 8080 },
      }).success,
    )
  })

  it('rejects unknown fields in resources, ports and healthCheck', () => {
    assertUnknownKey({ ...minimal, resources: { cpus: 1, swapMb: 10 } }, 'resources', 'swapMb')
    assertUnknownKey({ ...minimal, ports: [{ containerPort: 80, hostPort: 80 }] }, 'ports.0', 'hostPort')
    assertUnknownKey(
      { ...minimal, healthCheck: { type: 'http', port: 80, exec: 'rm -rf /' } },
      'healthCheck',
      'exec',
    )
  })

  it('rejects names that are not DNS labels', () => {
    for (const name of [
      'Web',
      'WEB',
      'my_app',
      '-web',
      'web-',
      'a'.repeat(64),
      '',
      'web.app',
      'wéb',
      ' web',
    ]) {
      assertRejectedAt({ ...minimal, name }, 'name')
    }
  })

  it('rejects empty, blank and shell-laden images', () => {
    for (const image of [
      '',
      ' ',
      '   ',
      'nginx latest',
      'nginx;rm -rf /',
      'nginx && curl evil',
      '$(whoami)',
      '`id`',
      'nginx|sh',
      'nginx\n',
      '-nginx',
      'nginx>out',
    ]) {
      assertRejectedAt({ ...minimal, image }, 'image')
    }
  })

  it('rejects ports 0, 65536, negative and fractional', () => {
    for (const containerPort of [0, 65536, -1, 80.5]) {
      assertRejectedAt({ ...minimal, ports: [{ containerPort }] }, 'ports.0.containerPort')
    }
    assertRejectedAt({ ...minimal, ports: [{ containerPort: 80, protocol: 'sctp' }] }, 'ports.0.protocol')
  })

  it('rejects duplicate ports, pointing at the second one', () => {
    const issue = assertRejectedAt(
      {
        ...minimal,
        ports: [{ containerPort: 80 }, { containerPort: 443 }, { containerPort: 80, protocol: 'tcp' }],
      },
      'ports.2',
    )
    assert.match(issue.message, /80/)
  })

  it('rejects absurd resources', () => {
    assertRejectedAt({ ...minimal, resources: { cpus: 1000 } }, 'resources.cpus')
    assertRejectedAt({ ...minimal, resources: { cpus: 0 } }, 'resources.cpus')
    assertRejectedAt({ ...minimal, resources: { cpus: -1 } }, 'resources.cpus')
    assertRejectedAt({ ...minimal, resources: { memoryMb: 10 ** 9 } }, 'resources.memoryMb')
    assertRejectedAt({ ...minimal, resources: { memoryMb: -256 } }, 'resources.memoryMb')
    assertRejectedAt({ ...minimal, resources: { memoryMb: 1.5 } }, 'resources.memoryMb')
    assertRejectedAt({ ...minimal, resources: { gpus: 99 } }, 'resources.gpus')
    assertRejectedAt({ ...minimal, resources: { gpus: -1 } }, 'resources.gpus')
    assertRejectedAt({ ...minimal, resources: { diskMb: -1 } }, 'resources.diskMb')
    assertRejectedAt({ ...minimal, resources: { diskMb: 10 ** 12 } }, 'resources.diskMb')
  })

  it('rejects non-finite numbers', () => {
    assertRejectedAt({ ...minimal, resources: { cpus: Number.POSITIVE_INFINITY } }, 'resources.cpus')
    assertRejectedAt({ ...minimal, resources: { cpus: Number.NaN } }, 'resources.cpus')
  })

  it('rejects replicas 0, 101 and fractions', () => {
    for (const replicas of [0, 101, -1, 1.5]) assertRejectedAt({ ...minimal, replicas }, 'replicas')
  })

  it('rejects bad environment variable names, pointing at the name', () => {
    for (const name of ['1ABC', 'A-B', 'A B', 'A=B', '', 'A;B', 'PATH$']) {
      assertRejectedAt({ ...minimal, env: { [name]: 'x' } }, `env.${name}`)
    }
  })

  it('rejects non-string environment values', () => {
    assertRejectedAt({ ...minimal, env: { PORT: 8080 } }, 'env.PORT')
  })

  it('rejects a health check path not starting with "/" and a bad type', () => {
    assertRejectedAt(
      { ...minimal, healthCheck: { type: 'http', port: 80, path: 'health' } },
      'healthCheck.path',
    )
    assertRejectedAt({ ...minimal, healthCheck: { type: 'exec', port: 80 } }, 'healthCheck.type')
    assertRejectedAt({ ...minimal, healthCheck: { type: 'tcp', port: 0 } }, 'healthCheck.port')
  })

  it('rejects wrong types', () => {
    assertRejectedAt({ ...minimal, name: 42 }, 'name')
    assertRejectedAt({ ...minimal, image: ['nginx'] }, 'image')
    assertRejectedAt({ ...minimal, replicas: '3' }, 'replicas')
    assertRejectedAt({ ...minimal, command: 'serve --port 80' }, 'command')
    assertRejectedAt({ ...minimal, command: ['serve', 80] }, 'command.1')
    assertRejectedAt({ ...minimal, env: ['A=B'] }, 'env')
    assertRejectedAt({ ...minimal, ports: { containerPort: 80 } }, 'ports')
    assertRejectedAt({ ...minimal, ports: [{ containerPort: '80' }] }, 'ports.0.containerPort')
    assertRejectedAt({ ...minimal, resources: { cpus: '2' } }, 'resources.cpus')
    assertRejectedAt({ ...minimal, resources: 'large' }, 'resources')
    assertRejectedAt({ ...minimal, labels: { tier: 1 } }, 'labels.tier')
  })

  it('rejects missing required fields', () => {
    assertRejectedAt({ image: 'nginx' }, 'name')
    assertRejectedAt({ name: 'web' }, 'image')
    assertRejectedAt({ ...minimal, healthCheck: { type: 'http' } }, 'healthCheck.port')
  })

  it('rejects a body that is not an object', () => {
    for (const input of [null, 'web', 42, [minimal], undefined]) {
      const issues = issuesOf(input)
      assert.ok(issues.length > 0)
    }
  })

  it('reports every problem of a spec at once', () => {
    const issues = issuesOf({ name: 'Bad_Name', image: '', replicas: 0, resources: { gpus: 99 } })
    const paths = issues.map((issue) => issue.path)
    for (const path of ['name', 'image', 'replicas', 'resources.gpus']) {
      assert.ok(paths.includes(path), `missing ${path} in ${JSON.stringify(paths)}`)
    }
  })

  it('adds back allow-listed capabilities with a reason, and names any other one it refuses', () => {
    const spec = singleImageSpecSchema.parse({
      ...minimal,
      capAdd: [{ capability: 'NET_BIND_SERVICE', reason: 'serves on port 80 as a non-root user' }],
    })
    assert.deepEqual(spec.capAdd?.[0]?.capability, 'NET_BIND_SERVICE')
    const refused = assertRejectedAt(
      { ...minimal, capAdd: [{ capability: 'SYS_ADMIN', reason: 'please' }] },
      'capAdd.0.capability',
    )
    assert.match(refused.message, /capability SYS_ADMIN cannot be added; allowed: NET_BIND_SERVICE/)
    assertRejectedAt({ ...minimal, capAdd: [{ capability: 'CHOWN', reason: ' ' }] }, 'capAdd.0.reason')
    assertRejectedAt({ ...minimal, capAdd: [{ capability: 'CHOWN' }] }, 'capAdd.0.reason')
    assertRejectedAt(
      {
        ...minimal,
        capAdd: [
          { capability: 'CHOWN', reason: 'a' },
          { capability: 'CHOWN', reason: 'b' },
        ],
      },
      'capAdd.1.capability',
    )
  })
})
