import type { Command } from 'commander'
import { exitCodes } from '../exit-codes.ts'
import { type Deployment, describeError, shortId } from '../output.ts'
import type { Action, CommandContext } from './context.ts'
import { followToGoal, parseSeconds } from './progress.ts'
import { deploymentPath, type Goal, goals, lastSeq, resolveDeployment } from './watch.ts'

interface Verb {
  name: string
  description: string
  method: 'POST' | 'DELETE'
  path: (id: string) => string
  /** What the human output says was asked, e.g. "stopping". */
  doing: string
  goal: Goal
  goalStatus: string
}

const verbs: Verb[] = [
  {
    name: 'stop',
    description: 'stop a deployment (it can be started again)',
    method: 'POST',
    path: (id) => `${deploymentPath(id)}/stop`,
    doing: 'stopping',
    goal: goals.stopped,
    goalStatus: 'stopped',
  },
  {
    name: 'start',
    description: 'start a stopped deployment',
    method: 'POST',
    path: (id) => `${deploymentPath(id)}/start`,
    doing: 'starting',
    goal: goals.running,
    goalStatus: 'running',
  },
  {
    name: 'restart',
    description: 'restart a deployment',
    method: 'POST',
    path: (id) => `${deploymentPath(id)}/restart`,
    doing: 'restarting',
    goal: goals.running,
    goalStatus: 'running',
  },
  {
    name: 'rm',
    description: 'delete a deployment',
    method: 'DELETE',
    path: deploymentPath,
    doing: 'deleting',
    goal: goals.deleted,
    goalStatus: 'deleted',
  },
]

interface LifecycleOptions {
  wait?: boolean
  timeout?: number
}

export function registerLifecycle(program: Command, action: Action): void {
  for (const verb of verbs) {
    const command = program
      .command(verb.name)
      .description(verb.description)
      .argument('<deployment>', 'id, id prefix or name')
      .option('-w, --wait', `wait until the deployment is ${verb.goalStatus}`)
      .option('--timeout <seconds>', 'with --wait: give up after this long (exit 1)', parseSeconds)
      .action(action((ctx, ref: string, opts: LifecycleOptions) => change(ctx, verb, ref, opts)))
    if (verb.name === 'rm') command.alias('delete')
  }
}

async function change(ctx: CommandContext, verb: Verb, ref: string, opts: LifecycleOptions): Promise<number> {
  const client = ctx.client()
  const target = await resolveDeployment(client, ref)
  // Taken before the request, so the wait counts only what the request caused.
  const after = opts.wait ? await lastSeq(client, target.id) : 0
  const accepted = await client.request<Deployment>(verb.method, verb.path(target.id))
  if (!opts.wait) {
    ctx.print(accepted, () => `${verb.doing} ${accepted.name} (${shortId(accepted.id)})\n`)
    return exitCodes.ok
  }
  if (!ctx.json) ctx.io.stdout.write(`${verb.doing} ${accepted.name} (${shortId(accepted.id)})\n`)
  const { outcome, final } = await followToGoal(ctx, client, accepted, verb.goal, {
    after,
    fromStage: target.progress?.stage,
    timeoutSeconds: opts.timeout,
  })
  ctx.print(final, () => (outcome === 'ok' ? `${final.name} is ${final.status}\n` : ''))
  if (outcome === 'ok') return exitCodes.ok
  if (!ctx.json) {
    const reason = describeError(final.error) ?? `it is ${final.status}`
    ctx.io.stderr.write(`error: ${verb.name} ${final.name} did not finish: ${reason}\n`)
  }
  return exitCodes.unexpected
}
