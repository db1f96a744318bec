import { execFile } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ProviderError } from '../provider.ts'

// Volumes whose size is enforced: the engine's `local` driver cannot limit a named volume on this
// kind of host (no quota-capable storage driver), so a sized volume is a filesystem of its own.
// berth makes a sparse file of the size, formats it ext4, mounts it through a loop device on a
// directory of its own, and the engine's volume binds that directory. A write past the size fails
// with "no space left on device" inside the container, and nothing beyond it reaches the host's
// disk. This needs berth on the engine's host, as root, with losetup and mkfs.ext4 (Debian's
// mount and e2fsprogs): `providers.docker.volumeSizes: auto` uses it when they are there.
// The mount is made again by the next apply after the host restarts (mounts do not survive it).

const run = promisify(execFile)

export interface SizedVolumes {
  /** The driver options of a volume bound to a filesystem of `sizeMb`, made and mounted if needed. */
  prepare(
    source: string,
    sizeMb: number,
    owner?: { uid: number; gid: number },
  ): Promise<Record<string, string>>
  /** Unmounts and deletes the filesystem; after the engine's volume is gone. */
  remove(source: string): Promise<void>
}

/** Whether this process can make loop filesystems (root, with the tools). */
export function canLoopMount(): boolean {
  return (
    process.getuid?.() === 0 &&
    ['/usr/sbin/mkfs.ext4', '/usr/bin/mount', '/usr/bin/umount'].every(
      (p) => existsSync(p) || existsSync(p.replace('/usr', '')),
    )
  )
}

function mounted(dir: string): boolean {
  // Mount points as the kernel lists them (field 5 of mountinfo), spaces escaped as \040.
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4]?.replace(/\\040/g, ' ') === dir)
}

export function createLoopVolumes(dir: string): SizedVolumes {
  const pathsOf = (source: string) => ({ image: join(dir, `${source}.ext4`), mountPoint: join(dir, source) })
  const failed = (what: string, error: unknown) =>
    new ProviderError(
      'transient',
      `cannot ${what}: ${(error as { stderr?: string }).stderr?.trim() || (error as Error).message}`,
      {
        cause: error,
      },
    )

  return {
    async prepare(source, sizeMb, owner) {
      const { image, mountPoint } = pathsOf(source)
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      if (!existsSync(image)) {
        // Made aside and renamed: a crash never leaves a half-formatted image under the real name.
        const partial = `${image}.partial`
        try {
          await run('truncate', ['-s', `${sizeMb}M`, partial])
          await run('mkfs.ext4', [
            '-q',
            '-F',
            // No blocks kept for root: the tenant gets the size asked for.
            '-m',
            '0',
            partial,
          ])
          renameSync(partial, image)
        } catch (error) {
          rmSync(partial, { force: true })
          throw failed(`make a ${sizeMb} MB filesystem for volume ${source}`, error)
        }
      }
      mkdirSync(mountPoint, { recursive: true })
      if (!mounted(mountPoint)) {
        try {
          await run('mount', ['-o', 'loop,nosuid,nodev', image, mountPoint])
        } catch (error) {
          throw failed(`mount the filesystem of volume ${source}`, error)
        }
      }
      // The engine binds a directory that exists only inside the mounted filesystem: with the
      // mount missing the bind fails and nothing starts, rather than writing to the host's disk.
      const inside = join(mountPoint, 'volume')
      if (!existsSync(inside)) {
        mkdirSync(inside)
        // Its owner is the image's user, as a new named volume takes its mount point's owner.
        if (owner) chownSync(inside, owner.uid, owner.gid)
      }
      return { type: 'none', o: 'bind', device: inside }
    },

    async remove(source) {
      const { image, mountPoint } = pathsOf(source)
      if (mounted(mountPoint)) {
        try {
          await run('umount', [mountPoint])
        } catch (error) {
          throw failed(`unmount the filesystem of volume ${source}`, error)
        }
      }
      rmSync(mountPoint, { recursive: true, force: true })
      rmSync(image, { force: true })
    },
  }
}
