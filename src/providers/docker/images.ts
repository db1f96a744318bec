import type Docker from 'dockerode'
import { abortableDelay } from '../../domain/delay.ts'
import { ProviderError } from '../provider.ts'
import { engineMessageOf, isNotFound, isUnreachable, toProviderError } from './errors.ts'
import type { AuthConfig } from './registry-auth.ts'

// Images are pulled only when the engine does not have them. Pull failures are retried a few
// times (a registry hiccup), then reported as `image_pull_failed` with a short reason (not found,
// unauthorized, unreachable): the engine's own text names registries, addresses and credentials
// helpers, so it goes to the log (the error's cause), not to the tenant. The reconciler fails the
// deployment with that event rather than retrying a bad reference forever.

export interface PullOptions {
  attempts: number
  retryDelayMs: number
  signal: AbortSignal
  /** Credentials for the image's registry, when configured (registry-auth.ts). */
  auth?: AuthConfig
}

export async function hasImage(docker: Docker, image: string): Promise<boolean> {
  try {
    await docker.getImage(image).inspect()
    return true
  } catch (error) {
    if (isNotFound(error)) return false
    throw toProviderError(error, `inspect image ${image}`)
  }
}

/** Pulls `image` unless present; returns whether a pull happened. */
export async function ensureImage(docker: Docker, image: string, options: PullOptions): Promise<boolean> {
  if (await hasImage(docker, image)) return false
  let last: unknown
  for (let attempt = 1; attempt <= options.attempts; attempt++) {
    options.signal.throwIfAborted()
    try {
      await pullOnce(docker, image, options.signal, options.auth)
      return true
    } catch (error) {
      // An engine that went away is not the image's fault: the reconciler retries that later.
      if (isUnreachable(error)) throw toProviderError(error, `pull ${image}`)
      last = error
    }
    if (attempt < options.attempts)
      await abortableDelay(options.retryDelayMs * 2 ** (attempt - 1), options.signal)
  }
  throw new ProviderError(
    'permanent',
    `pulling ${image} failed: ${pullFailureReason(engineMessageOf(last))}`,
    {
      cause: last,
      eventType: 'image_pull_failed',
    },
  )
}

/** The engine's pull error, said in a few words a tenant can act on. */
export function pullFailureReason(
  engineMessage: string,
): 'not found' | 'unauthorized' | 'unreachable' | 'failed' {
  const text = engineMessage.toLowerCase()
  if (/unauthorized|authentication required|denied|forbidden|no basic auth/.test(text)) return 'unauthorized'
  if (/not found|manifest unknown|does not exist|no such image|invalid reference/.test(text))
    return 'not found'
  if (
    /timeout|timed out|no such host|connection refused|dial tcp|i\/o|tls|network is unreachable|lookup/.test(
      text,
    )
  ) {
    return 'unreachable'
  }
  return 'failed'
}

async function pullOnce(docker: Docker, image: string, signal: AbortSignal, auth?: AuthConfig) {
  const stream = (await docker.pull(image, {
    abortSignal: signal,
    ...(auth ? { authconfig: auth } : {}),
  })) as NodeJS.ReadableStream
  const events = await new Promise<Array<{ error?: string; errorDetail?: { message?: string } }>>(
    (resolve, reject) =>
      docker.modem.followProgress(stream, (error: Error | null, output: Array<{ error?: string }>) =>
        error ? reject(error) : resolve(output),
      ),
  )
  // The engine reports a failed pull as an event inside a successful response.
  const failure = events.find((e) => e.error || e.errorDetail)
  if (failure) throw new Error(failure.errorDetail?.message ?? failure.error)
}
