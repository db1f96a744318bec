import { InvalidArgumentError } from 'commander'
import type { HttpClient } from '../../client/http-client.ts'
import { BerthError } from '../../domain/errors.ts'
import { createProgress, type Deployment, formatProgress } from '../output.ts'
import type { CommandContext } from './context.ts'
import { deploymentPath, type Goal, isNotFound, type Outcome, waitFor } from './watch.ts'

// Following a deployment to a goal with live progress: shared by `deploy` and the `--wait` of
// stop/start/restart/rm.

export function parseSeconds(value: string): number {
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number of seconds')
  return n
}

export interface FollowResult {
  outcome: Outcome
  /** The deployment as it is once the goal decided (for a deleted one, the last copy seen). */
  final: Deployment
}

export async function followToGoal(
  ctx: CommandContext,
  client: HttpClient,
  deployment: Deployment,
  goal: Goal,
  options: { after: number; timeoutSeconds?: number; fromStage?: string },
): Promise<FollowResult> {
  const out = ctx.io.stdout
  const progress = createProgress(out)
  const signal = options.timeoutSeconds ? AbortSignal.timeout(options.timeoutSeconds * 1000) : undefined
  let outcome: Outcome
  let lastStatus = deployment.status
  // A stop or delete leaves the stage where it was ("running"): show the status instead.
  let lastStage = options.fromStage
  try {
    outcome = await waitFor(client, deployment.id, goal, {
      after: options.after,
      signal,
      onEvent: (event) => {
        if (event.status) lastStatus = event.status
        if (ctx.json) return
        if (event.stage && event.stage !== lastStage)
          progress.update(formatProgress(event.percent ?? 0, event.stage))
        else if (event.status) progress.update(event.status)
        lastStage = event.stage ?? lastStage
      },
    })
  } catch (error) {
    progress.done()
    if (signal?.aborted) {
      throw new BerthError(
        'internal',
        `timed out after ${options.timeoutSeconds}s waiting for ${deployment.name}; it is ${lastStatus}`,
      )
    }
    throw error
  }
  progress.done()
  let final: Deployment
  try {
    final = await client.get<Deployment>(deploymentPath(deployment.id))
  } catch (error) {
    if (!isNotFound(error)) throw error
    final = { ...deployment, status: lastStatus }
  }
  return { outcome, final }
}
