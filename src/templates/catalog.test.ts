import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { stringify } from 'yaml'
import { BUILT_IN_TEMPLATES, loadCatalog } from './catalog.ts'

// What the catalog refuses of a multi-service template at start, each named with its file.

const cluster = {
  id: 'pair',
  name: 'Pair',
  description: 'two services',
  sizes: { small: { cpus: 0.5, memoryMb: 256, storageMb: 64 } },
  secrets: { token: { length: 32 } },
  services: [
    {
      name: 'store',
      image: 'store:1',
      env: { TOKEN: '{{secrets.token}}', SELF: 'store.{{deployment.name}}' },
      ports: [{ containerPort: 80 }],
      volumes: [{ name: 'data', mountPath: '/data', storage: true }],
    },
    { name: 'front', image: 'front:1', dependsOn: ['store'], ports: [{ containerPort: 8080 }] },
  ],
  outputs: { front: 'http://{{host:front.8080}}:{{port:front.8080}}' },
}

function load(template: unknown) {
  const dir = mkdtempSync(join(tmpdir(), 'berth-catalog-'))
  try {
    writeFileSync(join(dir, 't.yaml'), stringify(template))
    return loadCatalog([dir])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe('template catalog: multi-service templates', () => {
  it('loads the built-in catalog', () => {
    assert.deepEqual(
      loadCatalog([BUILT_IN_TEMPLATES])
        .list()
        .map((t) => t.id),
      ['ipfs', 'ipfs-cluster', 'postgres', 'storage'],
    )
  })

  it('accepts a well-formed one', () => {
    assert.equal(load(cluster).get('pair')?.services?.length, 2)
  })

  it('refuses what names nothing, and rotation in several services', () => {
    const refused = (change: (t: typeof cluster) => unknown, problem: RegExp) =>
      assert.throws(() => load(change(structuredClone(cluster))), problem)
    refused((t) => ({ ...t, outputs: { front: 'http://{{host:8080}}' } }), /output front: no port 8080/)
    refused(
      (t) => ({ ...t, outputs: { front: 'http://{{host:store.8080}}' } }),
      /output front: no port store\.8080/,
    )
    refused(
      (t) => ({ ...t, services: [t.services[0], { ...t.services[1], dependsOn: ['cache'] }] }),
      /service front: no service named cache/,
    )
    refused(
      (t) => ({ ...t, secrets: { token: { length: 32, rotate: ['rotate', '{{secrets.token}}'] } } }),
      /rotation runs in one-service templates only/,
    )
    refused(
      (t) => ({ ...t, services: [{ ...t.services[0], env: { X: '{{deployment.id}}' } }, t.services[1]] }),
      /service store: env X: only \{\{deployment\.name\}\}/,
    )
    refused((t) => ({ ...t, service: { image: 'x:1' } }), /give either service or services/)
  })
})
