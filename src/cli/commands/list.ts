import { type Command, InvalidArgumentError } from 'commander'
import { exitCodes } from '../exit-codes.ts'
import {
  type Deployment,
  deploymentTableHeaders,
  formatDeployment,
  formatDeploymentRow,
  renderTable,
} from '../output.ts'
import type { Action } from './context.ts'
import { resolveDeployment } from './watch.ts'

export function parseCount(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number')
  return n
}

export function registerList(program: Command, action: Action): void {
  program
    .command('ls')
    .alias('list')
    .description('list your deployments')
    .option('--status <status>', 'only deployments with this status')
    .option('--limit <n>', 'at most this many', parseCount)
    .option('--offset <n>', 'skip this many', parseCount)
    .action(
      action(async (ctx, opts: { status?: string; limit?: number; offset?: number }) => {
        const page = await ctx.client().get<{ items: Deployment[]; total: number }>('/v1/deployments', {
          query: { status: opts.status, limit: opts.limit, offset: opts.offset },
        })
        ctx.print(page, () => {
          if (page.items.length === 0)
            return page.total ? `no deployments here (${page.total} in all)\n` : 'no deployments\n'
          const now = ctx.io.now()
          const table = renderTable(
            deploymentTableHeaders,
            page.items.map((d) => formatDeploymentRow(d, now)),
          )
          const shown = (opts.offset ?? 0) + page.items.length
          return shown < page.total
            ? `${table}(${page.items.length} of ${page.total}; see --limit/--offset)\n`
            : table
        })
        return exitCodes.ok
      }),
    )

  program
    .command('get')
    .description('show a deployment, with its endpoints')
    .argument('<deployment>', 'id, id prefix or name')
    .action(
      action(async (ctx, ref: string) => {
        const deployment = await resolveDeployment(ctx.client(), ref)
        ctx.print(deployment, () => formatDeployment(deployment, ctx.io.now()))
        return exitCodes.ok
      }),
    )
}
