import type { Command } from 'commander'
import { exitCodes } from '../exit-codes.ts'
import { type DeploymentEvent, formatEvent } from '../output.ts'
import type { Action, CommandContext } from './context.ts'
import { parseCount } from './list.ts'
import { deploymentPath, followEventStream, listEvents, resolveDeployment } from './watch.ts'

export function registerEvents(program: Command, action: Action): void {
  program
    .command('events')
    .description("show a deployment's event log")
    .argument('<deployment>', 'id, id prefix or name')
    .option('-f, --follow', 'keep printing events as they happen (one JSON object per line with --json)')
    .action(action((ctx, ref: string, opts: { follow?: boolean }) => events(ctx, ref, opts)))

  program
    .command('logs')
    .description("print a deployment's logs")
    .argument('<deployment>', 'id, id prefix or name')
    .option('-f, --follow', 'keep streaming new lines')
    .option('-n, --tail <n>', 'only the last n lines', parseCount)
    .action(action((ctx, ref: string, opts: { follow?: boolean; tail?: number }) => logs(ctx, ref, opts)))
}

async function events(ctx: CommandContext, ref: string, opts: { follow?: boolean }): Promise<number> {
  const client = ctx.client()
  const { id } = await resolveDeployment(client, ref)
  const out = ctx.io.stdout
  if (!opts.follow) {
    const items = await listEvents(client, id)
    ctx.print({ items }, () => items.map((e) => `${formatEvent(e)}\n`).join(''))
    return exitCodes.ok
  }
  const line = (e: DeploymentEvent) => (ctx.json ? JSON.stringify(e) : formatEvent(e))
  for await (const event of followEventStream(client, id)) {
    out.write(`${line(event)}\n`)
    // Nothing follows deletion.
    if (event.status === 'deleted') break
  }
  return exitCodes.ok
}

/** `<ISO timestamp> <stream> <text>` → its parts, for --json. */
export function parseLogLine(line: string): { at: string; stream: string; text: string } {
  const first = line.indexOf(' ')
  const second = first === -1 ? -1 : line.indexOf(' ', first + 1)
  if (first === -1) return { at: '', stream: '', text: line }
  if (second === -1) return { at: line.slice(0, first), stream: line.slice(first + 1), text: '' }
  return { at: line.slice(0, first), stream: line.slice(first + 1, second), text: line.slice(second + 1) }
}

async function logs(
  ctx: CommandContext,
  ref: string,
  opts: { follow?: boolean; tail?: number },
): Promise<number> {
  const client = ctx.client()
  const { id } = await resolveDeployment(client, ref)
  const response = await client.open(`${deploymentPath(id)}/logs`, {
    query: { tail: opts.tail, follow: opts.follow ? 1 : undefined },
    headers: { accept: 'text/plain' },
  })
  if (!response.body) return exitCodes.ok
  const out = ctx.io.stdout
  let partial = ''
  for await (const chunk of response.body.pipeThrough(new TextDecoderStream())) {
    if (!ctx.json) {
      out.write(chunk)
      continue
    }
    const lines = (partial + chunk).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) out.write(`${JSON.stringify(parseLogLine(line))}\n`)
  }
  if (ctx.json && partial) out.write(`${JSON.stringify(parseLogLine(partial))}\n`)
  return exitCodes.ok
}
