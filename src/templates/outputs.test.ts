import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { outputsOf } from './outputs.ts'

describe('template outputs', () => {
  const ref = {
    id: 'postgres',
    size: 'small',
    params: { user: 'shop', database: 'app' },
    outputs: {
      connection: 'postgresql://shop@{{host:5432}}:{{port:5432}}/app',
      admin: 'http://{{host:8080}}:{{port:8080}}/',
      plain: 'no placeholders',
    },
    credentials: { password: 'POSTGRES_PASSWORD' },
  }

  it('fills host and port from where each container port answers', () => {
    const out = outputsOf(ref, [
      { containerPort: 5432, protocol: 'tcp', url: 'http://db.example:30001' },
      { containerPort: 5432, protocol: 'tcp', url: 'http://db.example:30002' },
    ])
    assert.deepEqual(out, { connection: 'postgresql://shop@db.example:30001/app', plain: 'no placeholders' })
  })

  it("names the port a URL leaves out as its scheme's default", () => {
    const out = outputsOf(ref, [{ containerPort: 8080, protocol: 'tcp', url: 'http://admin.example' }])
    assert.equal(out.admin, 'http://admin.example:80/')
  })

  it('leaves out what needs a port that does not answer yet', () => {
    assert.deepEqual(outputsOf(ref, []), { plain: 'no placeholders' })
  })

  it("fills a service's port from that service's first replica", () => {
    const cluster = { ...ref, outputs: { gateway: 'http://{{host:node1.8080}}:{{port:node1.8080}}' } }
    const out = outputsOf(cluster, [
      { containerPort: 8080, protocol: 'tcp', url: 'http://h:30001', service: 'node0' },
      { containerPort: 8080, protocol: 'tcp', url: 'http://h:30002', service: 'node1' },
    ])
    assert.deepEqual(out, { gateway: 'http://h:30002' })
  })
})
