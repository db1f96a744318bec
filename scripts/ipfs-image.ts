import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  copyFileSync,
  cpSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEFAULT_SOCKET } from './docker.ts'
import { buildLocalImage, copyInto, librariesOf } from './local-image.ts'

// An IPFS image for the template tests, standing in for both ipfs/kubo and ipfs/ipfs-cluster (the
// environment picks the role): Helia and libp2p programs (scripts/ipfs-image/, main.mjs's header is
// the env, port and route contract) on the test host's own Node binary and the shared libraries it
// loads, with their npm dependencies installed from the lockfile, in a FROM scratch image. The npm
// registry is the only one reachable here; about a minute to build, once per engine, kept by its tag.

const here = new URL('./ipfs-image/', import.meta.url)
const dir = fileURLToPath(here)
/** Every program file (main.mjs and the modules it loads), all copied to /app and all hashed. */
const programs = readdirSync(dir)
  .filter((f) => f.endsWith('.mjs'))
  .sort()

/** Tagged by what builds it, so a changed program, lockfile or Dockerfile builds a new image. */
export const IPFS_TEST_IMAGE = `berth-test/ipfs-node:${[
  'Dockerfile',
  'package.json',
  'package-lock.json',
  ...programs,
]
  .reduce((hash, file) => hash.update(readFileSync(join(dir, file))), createHash('sha256'))
  .update(readFileSync(fileURLToPath(import.meta.url)))
  .digest('hex')
  .slice(0, 12)}`

/** Installs the locked dependencies; npm's own output is kept for the error only. */
function npmInstall(cwd: string): void {
  try {
    // Peer dependencies are left out: the libp2p defaults Helia ships pull in react-native as the
    // peer of a WebRTC module the node never loads, which would double the install to ~340 MB.
    execFileSync('npm', ['ci', '--omit=dev', '--omit=peer', '--ignore-scripts', '--no-audit', '--no-fund'], {
      cwd,
      encoding: 'utf8',
      stdio: 'pipe',
      timeout: 5 * 60_000,
    })
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string }
    throw new Error(`npm ci for ${IPFS_TEST_IMAGE} failed: ${(error as Error).message}\n${stdout}${stderr}`)
  }
}

export function buildIpfsImage(socketPath = DEFAULT_SOCKET): Promise<string> {
  return buildLocalImage(socketPath, IPFS_TEST_IMAGE, ['Dockerfile', 'rootfs', 'data'], (context) => {
    const root = join(context, 'rootfs')
    // Installed outside the image's context: only the files node loads are copied into /app.
    const install = join(context, 'install')
    const app = join(root, 'app')
    mkdirSync(install)
    mkdirSync(app, { recursive: true })
    for (const file of ['package.json', 'package-lock.json', ...programs])
      copyFileSync(join(dir, file), join(app, file))
    for (const file of ['package.json', 'package-lock.json'])
      copyFileSync(join(dir, file), join(install, file))
    npmInstall(install)
    // Source maps, TypeScript sources and declarations and docs are half of node_modules, and
    // none of them is ever loaded.
    const unused = /(\.(map|[cm]?ts|md)|\/\.bin)$/
    cpSync(join(install, 'node_modules'), join(app, 'node_modules'), {
      recursive: true,
      filter: (source) => !unused.test(source),
    })
    const node = realpathSync('/usr/bin/node')
    copyInto(root, node, '/usr/bin/node')
    for (const library of librariesOf(node)) copyInto(root, library)
    // The loader itself, at the path the binary names.
    copyInto(root, '/lib64/ld-linux-x86-64.so.2')
    mkdirSync(join(root, 'etc'), { recursive: true })
    writeFileSync(
      join(root, 'etc/passwd'),
      'root:x:0:0:root:/root:/sbin/nologin\nipfs:x:1000:1000:ipfs:/data:/sbin/nologin\n',
    )
    writeFileSync(join(root, 'etc/group'), 'root:x:0:\nipfs:x:1000:\n')
    // An empty directory the Dockerfile copies to each role's data directory and /tmp as the
    // user's: the build context is packed with the umask applied, so a 1777 /tmp would arrive as 1755.
    mkdirSync(join(context, 'data'))
    copyFileSync(join(dir, 'Dockerfile'), join(context, 'Dockerfile'))
  })
}
