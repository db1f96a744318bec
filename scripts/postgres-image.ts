import { createHash } from 'node:crypto'
import { copyFileSync, cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEFAULT_SOCKET } from './docker.ts'
import { buildLocalImage, copyInto, librariesOf } from './local-image.ts'

// A PostgreSQL image for the template tests, built from the test host's own PostgreSQL 15 (its
// binaries, the shared libraries they load, its share files) and static busybox, in a FROM
// scratch image of about 90 MB in a few seconds. Built once per engine and kept by its tag.

const PG = '/usr/lib/postgresql/15'
const here = new URL('./postgres-image/', import.meta.url)

/** Tagged by what builds it, so a changed Dockerfile or entrypoint builds a new image. */
export const POSTGRES_TEST_IMAGE = `berth-test/postgres:15-${createHash('sha256')
  .update(readFileSync(new URL('Dockerfile', here)))
  .update(readFileSync(new URL('postgres-entrypoint.sh', here)))
  .update(readFileSync(fileURLToPath(import.meta.url)))
  .digest('hex')
  .slice(0, 12)}`

export function buildPostgresImage(socketPath = DEFAULT_SOCKET): Promise<string> {
  return buildLocalImage(socketPath, POSTGRES_TEST_IMAGE, ['Dockerfile', 'rootfs'], (context) => {
    const root = join(context, 'rootfs')
    const binaries = ['postgres', 'initdb', 'psql', 'pg_isready'].map((b) => join(PG, 'bin', b))
    const libraries = new Set(binaries.flatMap(librariesOf))
    for (const path of [...binaries, ...libraries]) copyInto(root, path)
    // The loader itself, at the path the binaries name.
    for (const loader of ['/lib64/ld-linux-x86-64.so.2']) copyInto(root, loader)
    cpSync(join(PG, 'lib'), join(root, PG, 'lib'), { recursive: true, dereference: true })
    cpSync('/usr/share/postgresql/15', join(root, 'usr/share/postgresql/15'), {
      recursive: true,
      dereference: true,
    })
    for (const zone of ['UTC', 'Etc/UTC']) copyInto(root, join('/usr/share/zoneinfo', zone))
    mkdirSync(join(root, 'bin'), { recursive: true })
    copyFileSync('/bin/busybox', join(root, 'bin/busybox'))
    symlinkSync('busybox', join(root, 'bin/sh'))
    mkdirSync(join(root, 'etc'), { recursive: true })
    writeFileSync(
      join(root, 'etc/passwd'),
      'root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999:postgres:/var/lib/postgresql:/bin/sh\n',
    )
    writeFileSync(join(root, 'etc/group'), 'root:x:0:\npostgres:x:999:\n')
    mkdirSync(join(root, 'usr/local/bin'), { recursive: true })
    copyFileSync(new URL('postgres-entrypoint.sh', here), join(root, 'usr/local/bin/postgres-entrypoint.sh'))
    // Handed to the postgres user in the Dockerfile, so a new named volume mounted there is its own.
    for (const dir of ['var/lib/postgresql/data', 'var/run/postgresql', 'tmp'])
      mkdirSync(join(root, dir), { recursive: true })
    copyFileSync(new URL('Dockerfile', here), join(context, 'Dockerfile'))
  })
}
