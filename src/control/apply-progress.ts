import type { DeploymentPatch, DeploymentRow, Fence } from '../db/deployment-rows.ts'
import { type ProgressStage, stagePercent } from '../domain/lifecycle.ts'
import type { DeploymentSpec } from '../domain/spec.ts'
import type { EventInput } from '../events/event-log.ts'
import type { ApplyContext, Observed, Provider, RegistryCredential } from '../providers/provider.ts'
import type { DeployStart } from './decision.ts'
import type { FencedWrites } from './leases.ts'
import { isServiceReady } from './service-ready.ts'

/**
 * Progress of an apply is written this long after it happens, together with any progress that
 * follows; an apply that finishes sooner writes its progress with the move that ends it. Watchers
 * still see every stage, half a second late at most, and a quick apply costs one write instead of
 * one per stage (a busy control plane's applies of a few hundred ms included).
 */
const PROGRESS_FLUSH_MS = 500

export type AppliedWithProgress =
  | {
      ok: true
      observed: Observed
      /** Progress not yet written: the write that ends the apply carries it. */
      unwritten: { events: EventInput[]; patch: DeploymentPatch }
      /** The row as the last progress write left it (the claimed row when nothing was written). */
      latest: DeploymentRow
    }
  /** The failure is recorded against `latest`: a progress write may have moved it to `deploying`. */
  | { ok: false; error: unknown; latest: DeploymentRow }

/**
 * Runs the provider's apply, recording its progress: the move to `deploying` (with what it sets)
 * and each stage reached. A failed apply first writes the stages it reached.
 */
export async function applyWithProgress(
  row: DeploymentRow,
  fence: Fence,
  start: DeployStart,
  deps: {
    store: Pick<FencedWrites, 'write'>
    provider: Provider
    signal: AbortSignal
    /** The spec the provider gets: the stored one with its secret values opened. */
    openSpec: (row: DeploymentRow) => Promise<DeploymentSpec>
    /** The owner's registry credentials, opened, for pulling its images. */
    openRegistryCredentials: (ownerId: string) => Promise<RegistryCredential[]>
    /** How long a service others depend on may take to be ready. */
    readyTimeoutMs: number
  },
): Promise<AppliedWithProgress> {
  const buffered: EventInput[] = [...start.events]
  // The move to `deploying` (and what it sets) is written once, by whichever write carries it first.
  let deployingUnwritten: DeploymentPatch | undefined = start.events.length > 0 ? start.patch : undefined
  let lastStage: ProgressStage = start.events.at(-1)?.stage ?? row.stage
  let latest = row
  let timer: NodeJS.Timeout | undefined
  let flushed: Promise<unknown> = Promise.resolve()
  let flushError: unknown
  const flush = () => {
    clearTimeout(timer)
    timer = undefined
    const events = buffered.splice(0)
    if (events.length === 0) return
    const stage = [...events].reverse().find((e) => e.stage)?.stage ?? 'pulling'
    const statusPatch: DeploymentPatch = deployingUnwritten
      ? { status: 'deploying', ...deployingUnwritten }
      : {}
    deployingUnwritten = undefined
    flushed = flushed
      .then(async () => {
        latest = await deps.store.write(row, fence, {
          patch: { ...statusPatch, stage, percent: stagePercent[stage] },
          events,
          keepLease: true,
        })
      })
      // Kept until the apply is over, then thrown from there (a lost lease ends the step).
      .catch((error: unknown) => {
        flushError ??= error
      })
  }
  timer = setTimeout(flush, PROGRESS_FLUSH_MS)
  const ctx: ApplyContext = {
    signal: deps.signal,
    ready: (service) =>
      isServiceReady({
        provider: deps.provider,
        deploymentId: row.id,
        spec: row.spec,
        service,
        deadline: new Date((start.deployStartedAt ?? new Date()).getTime() + deps.readyTimeoutMs),
        now: () => new Date(),
      }),
    progress: async (stage, message) => {
      // A stage is told once; a message within it (what it waits for) is told too.
      if (stage === lastStage && message === undefined) return
      lastStage = stage
      buffered.push({
        type: 'progress',
        stage,
        percent: stagePercent[stage],
        ...(message ? { message } : {}),
      })
      timer ??= setTimeout(flush, PROGRESS_FLUSH_MS)
    },
  }
  let observed: Observed
  try {
    observed = await deps.provider.apply(
      {
        id: row.id,
        ownerId: row.ownerId,
        spec: await deps.openSpec(row),
        restartGeneration: row.restartGeneration,
        volumeGeneration: row.volumeGeneration,
        registryCredentials: await deps.openRegistryCredentials(row.ownerId),
      },
      ctx,
    )
  } catch (error) {
    // The stages reached before the failure are recorded before the failure is.
    flush()
    await flushed
    return { ok: false, error: flushError ?? error, latest }
  }
  clearTimeout(timer)
  await flushed
  if (flushError) return { ok: false, error: flushError, latest }
  return {
    ok: true,
    observed,
    unwritten: { events: buffered.splice(0), patch: deployingUnwritten ?? {} },
    latest,
  }
}
