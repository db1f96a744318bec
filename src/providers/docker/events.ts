import type Docker from 'dockerode'
import { backoffDelayMs } from '../../domain/backoff.ts'
import { abortableDelay } from '../../domain/delay.ts'
import type { ProviderWatcher } from '../provider.ts'
import { type EngineScope, LABEL, managedFilterOf } from './labels.ts'

// The engine's event stream, so that a container that exits is noticed at once instead of at the
// next resync. Only berth's containers, only the events that mean "it may have stopped". Like a
// list-then-watch: after every reconnect the watcher is told to look at everything again
// (`resynced`), since events sent while disconnected are lost.

/** What a watched container event says; `oom` comes from the kernel's OOM killer. */
export type ContainerEventKind = 'die' | 'oom' | 'kill'

const WATCHED: ContainerEventKind[] = ['die', 'oom', 'kill']

interface EngineEvent {
  Type?: string
  Action?: string
  Actor?: { Attributes?: Record<string, string> }
}

export interface WatchOptions {
  /** First reconnect delay, doubling (jittered) to `maxDelayMs`. */
  baseDelayMs?: number
  maxDelayMs?: number
}

/** Follows the engine's events until `signal` aborts, reconnecting with backoff. */
export async function watchContainerEvents(
  docker: Docker,
  watcher: ProviderWatcher,
  signal: AbortSignal,
  options: WatchOptions = {},
  scope?: EngineScope,
): Promise<void> {
  const delays = { baseMs: options.baseDelayMs ?? 500, maxMs: options.maxDelayMs ?? 30_000 }
  let failures = 0
  let connectedBefore = false
  while (!signal.aborted) {
    try {
      const stream = (await docker.getEvents({
        filters: { type: ['container'], event: WATCHED, label: [managedFilterOf(scope)] },
        abortSignal: signal,
      })) as NodeJS.ReadableStream
      failures = 0
      // Subscribed again after a gap: whatever happened meanwhile is found by looking again.
      if (connectedBefore) watcher.resynced()
      connectedBefore = true
      await consume(stream, watcher, signal)
    } catch (error) {
      if (signal.aborted) return
      watcher.disconnected?.(error)
    }
    if (signal.aborted) return
    await abortableDelay(backoffDelayMs(failures++, delays), signal).catch(() => {})
  }
}

async function consume(stream: NodeJS.ReadableStream, watcher: ProviderWatcher, signal: AbortSignal) {
  let buffered = ''
  const onAbort = () => (stream as NodeJS.ReadableStream & { destroy(): void }).destroy()
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    for await (const chunk of stream) {
      buffered += chunk.toString()
      // One JSON object per line.
      let newline = buffered.indexOf('\n')
      while (newline >= 0) {
        const line = buffered.slice(0, newline).trim()
        buffered = buffered.slice(newline + 1)
        newline = buffered.indexOf('\n')
        if (line) handle(line, watcher)
      }
    }
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
  // The stream ended: the engine went away (or restarted). The caller reconnects.
  throw new Error('docker event stream ended')
}

function handle(line: string, watcher: ProviderWatcher): void {
  let event: EngineEvent
  try {
    event = JSON.parse(line) as EngineEvent
  } catch {
    return // not an event; the engine does not send anything else on this stream
  }
  const deploymentId = event.Actor?.Attributes?.[LABEL.deployment]
  const kind = event.Action as ContainerEventKind | undefined
  if (!deploymentId || !kind || !WATCHED.includes(kind)) return
  watcher.changed(deploymentId, kind)
}
