import type { Command } from 'commander'
import { exitCodes } from '../exit-codes.ts'
import { renderTable } from '../output.ts'
import type { Action } from './context.ts'

interface QuotaView {
  limits: Record<string, number>
  overrides: Record<string, number>
  usage: Record<string, number>
}

export function registerQuota(program: Command, action: Action): void {
  program
    .command('quota')
    .description('show what your account may hold and what it uses')
    .action(
      action(async (ctx) => {
        const view = await ctx.client().get<QuotaView>('/v1/quotas')
        ctx.print(view, () =>
          renderTable(
            ['QUOTA', 'USED', 'LIMIT', ''],
            Object.keys(view.limits).map((key) => [
              key,
              String(view.usage[key] ?? 0),
              String(view.limits[key]),
              key in view.overrides ? 'set by the operator' : '',
            ]),
          ),
        )
        return exitCodes.ok
      }),
    )
}
