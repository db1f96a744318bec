import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import Docker from 'dockerode'

// What the images the tests build here share (no registry can be reached): binaries of the test
// host copied with the shared libraries they load into a FROM scratch root filesystem, and one
// build per tag, kept on the engine, older tags of the same repository removed.

/** The shared libraries `binary` loads, as the dynamic loader resolves them here. */
export function librariesOf(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' })
  return [...out.matchAll(/(\/[^\s)]+\.so[^\s)]*)/g)].map((m) => m[1]!)
}

/** Copies a host file (or directory) into the root filesystem, at its own path or at `as`. */
export function copyInto(root: string, path: string, as = path): void {
  const target = join(root, as)
  mkdirSync(dirname(target), { recursive: true })
  cpSync(path, target, { dereference: true })
}

/**
 * Builds `tag` unless the engine has it: `prepare` fills a fresh build context (a directory whose
 * entries `src` names, the Dockerfile among them), removed afterwards. Other tags of the same
 * repository, from older versions of what builds it, are removed first.
 */
export async function buildLocalImage(
  socketPath: string,
  tag: string,
  src: string[],
  prepare: (context: string) => Promise<void> | void,
): Promise<string> {
  const docker = new Docker({ socketPath, host: undefined })
  const repository = tag.split(':')[0]!
  for (const image of await docker.listImages({ filters: { reference: [repository] } })) {
    for (const other of image.RepoTags ?? []) {
      if (other !== tag)
        await docker
          .getImage(other)
          .remove()
          .catch(() => {})
    }
  }
  try {
    await docker.getImage(tag).inspect()
    return tag
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 404) throw error
  }
  const context = mkdtempSync(join(tmpdir(), `${repository.replace(/\W/g, '-')}-`))
  try {
    await prepare(context)
    const stream = await docker.buildImage({ context, src }, { t: tag, rm: true, forcerm: true })
    const events = await new Promise<Array<{ error?: string; stream?: string }>>((resolve, reject) =>
      docker.modem.followProgress(stream, (error: Error | null, output: Array<{ error?: string }>) =>
        error ? reject(error) : resolve(output),
      ),
    )
    const failure = events.find((e) => e.error)
    if (failure)
      throw new Error(
        `building ${tag} failed: ${failure.error}\n${events.map((e) => e.stream ?? '').join('')}`,
      )
    return tag
  } finally {
    rmSync(context, { recursive: true, force: true })
  }
}
