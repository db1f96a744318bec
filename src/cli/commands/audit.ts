import type { Command } from 'commander'
import type { AuditEntry } from '../../audit/audit-log.ts'
import { chainProblems, checkpointProblems } from '../../audit/chain-hash.ts'
import type { HttpClient } from '../../client/http-client.ts'
import { invalidInput } from '../../domain/errors.ts'
import { exitCodes } from '../exit-codes.ts'
import { renderTable } from '../output.ts'
import type { Action } from './context.ts'

// `berth audit …`: read the audit log of the account (or organisation) commands act for, and check
// its hash chain here, from what the server returns, rather than trusting the server to say so.

interface AuditPage {
  items: AuditEntry[]
  nextCursor: string | null
  head: { seq: number; hash: string } | null
}

const PAGE = 500

interface LsOptions {
  from?: string
  to?: string
  action?: string
  actor?: string
  target?: string
  owner?: string
  limit: string
}

export function registerAudit(program: Command, action: Action): void {
  const audit = program.command('audit').description('the audit log: who changed what, when and from where')

  audit
    .command('ls')
    .description('the latest entries, newest first (filters narrow them)')
    .option('--from <time>', 'entries at or after this ISO time')
    .option('--to <time>', 'entries before this ISO time')
    .option('--action <action>', 'an action, or a prefix ending in * (deployment.*)')
    .option('--actor <type:id>', 'account:0x…, key:<id>, operator:admin, system:billing, chain:0x…')
    .option('--target <target>', 'deployment:<id>, member:0x…, api_key:<id>…')
    .option('--owner <owner>', 'operator only: whose log (account id, wallet address or organisation slug)')
    .option('--limit <n>', 'at most this many entries', '50')
    .action(
      action(async (ctx, opts: LsOptions) => {
        const limit = Number(opts.limit)
        if (!Number.isInteger(limit) || limit < 1)
          throw invalidInput('--limit: must be a positive whole number')
        const { from, to, action: act, actor, target, owner } = opts
        const query = { from, to, action: act, actor, target, owner, order: 'desc' }
        const { items } = await fetchAudit(ctx.client(), query, limit)
        ctx.print({ items }, () =>
          items.length === 0
            ? 'no audit entries\n'
            : renderTable(
                ['AT', 'ACTOR', 'ACTION', 'TARGET', 'OUTCOME', 'FROM'],
                items.map((e) => [
                  e.at,
                  `${e.actor.type}:${e.actor.id}`,
                  e.action,
                  e.target,
                  e.outcome,
                  e.ip ?? '',
                ]),
              ),
        )
        return exitCodes.ok
      }),
    )

  audit
    .command('verify')
    .description(
      'fetch the whole log and check its hash chain, and that what was verified last time is unchanged: exits 5 if not',
    )
    .option('--owner <owner>', 'operator only: whose log (account id, wallet address or organisation slug)')
    .action(
      action(async (ctx, opts: { owner?: string }) => {
        const server = ctx.server()
        const { items, head } = await fetchAudit(ctx.client(), { owner: opts.owner })
        const owners = [...new Set(items.map((e) => e.owner))]
        const problems: string[] = []
        for (const owner of owners) {
          const entries = items.filter((e) => e.owner === owner)
          const saved = ctx.credentials().auditCheckpoint(server, owner)
          const found = [
            ...chainProblems(entries, owners.length === 1 ? (head ?? undefined) : undefined),
            ...(saved ? checkpointProblems(entries, saved) : []),
          ]
          problems.push(...(owners.length === 1 ? found : found.map((p) => `owner ${owner}: ${p}`)))
          const last = entries.at(-1)
          if (found.length === 0 && last) {
            ctx.credentials().saveAuditCheckpoint(server, owner, {
              seq: last.seq,
              hash: last.hash,
              at: ctx.io.now().toISOString(),
            })
          }
        }
        const last = items.at(-1)
        ctx.print({ entries: items.length, owners: owners.length, head, problems }, () =>
          problems.length === 0
            ? `the audit log is intact: ${items.length} entries${owners.length === 1 && last ? `, the last ${last.seq} (${last.hash.slice(0, 16)}…)` : ` of ${owners.length} owners`}\n`
            : `the audit log was altered:\n${problems.map((p) => `  ${p}\n`).join('')}`,
        )
        return problems.length === 0 ? exitCodes.ok : exitCodes.tampered
      }),
    )
}

/**
 * Entries page by page, up to `max`, with the owner's head as the first page gave it (entries
 * written while paging come after it).
 */
async function fetchAudit(
  client: HttpClient,
  query: Record<string, string | undefined>,
  max = Number.POSITIVE_INFINITY,
): Promise<{ items: AuditEntry[]; head: AuditPage['head'] }> {
  const items: AuditEntry[] = []
  let cursor: string | undefined
  let head: AuditPage['head'] = null
  do {
    const page = await client.get<AuditPage>('/v1/audit', {
      query: { ...query, cursor, limit: Math.min(PAGE, max - items.length) },
    })
    items.push(...page.items)
    if (!cursor) head = page.head
    cursor = page.nextCursor ?? undefined
  } while (cursor && items.length < max)
  return { items, head }
}
