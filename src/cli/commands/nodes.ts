import type { Command } from 'commander'
import { exitCodes } from '../exit-codes.ts'
import { formatAge, formatUsd, renderTable, shortId } from '../output.ts'
import type { Action, CommandContext } from './context.ts'

// `berth nodes …`: fleet nodes. A node operator sees their own; the operator (BERTH_TOKEN set to
// the admin token) sees every node with --all and cordons, drains and removes them.

interface Node {
  id: string
  name: string
  operator: string
  status: string
  labels: Record<string, string>
  allocatable: { milliCpus: number; memoryMb: number; diskMb: number } | null
  lastSeenAt: string
  lostAt: string | null
  uptimePercent: Record<'24h' | '7d' | '30d', number>
}

interface NodeDetail extends Node {
  sessions: Array<{ startedAt: string; lastSeenAt: string }>
  instances: Array<{ deploymentId: string; replica: number; state: string }>
}

interface Earnings {
  payableMicroUsd: string
  nodes: Array<{
    id: string
    name: string
    earnedMicroUsd: string
    forfeitedMicroUsd: string
    intervalsEarned: number
    intervalsForfeited: number
  }>
}

const percent = (value: number) => `${value.toFixed(2)}%`

function nodeRows(nodes: Node[], now: Date): string {
  return renderTable(
    ['ID', 'NAME', 'STATUS', 'UP 24H', 'UP 7D', 'UP 30D', 'CPUS', 'MEMORY', 'SEEN', 'LABELS'],
    nodes.map((n) => [
      shortId(n.id),
      n.name,
      n.status,
      percent(n.uptimePercent['24h']),
      percent(n.uptimePercent['7d']),
      percent(n.uptimePercent['30d']),
      n.allocatable ? String(n.allocatable.milliCpus / 1000) : '-',
      n.allocatable ? `${n.allocatable.memoryMb} MB` : '-',
      `${formatAge(n.lastSeenAt, now)} ago`,
      Object.entries(n.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
    ]),
  )
}

function printDetail(ctx: CommandContext, node: NodeDetail): void {
  ctx.print(node, () => {
    const lines = [
      `${node.name} (${node.id})  ${node.status}  operator ${node.operator}`,
      `uptime: 24h ${percent(node.uptimePercent['24h'])}, 7d ${percent(node.uptimePercent['7d'])}, 30d ${percent(node.uptimePercent['30d'])}`,
      ...(node.lostAt ? [`last found lost: ${node.lostAt}`] : []),
      `instances: ${node.instances.length === 0 ? 'none' : node.instances.map((i) => `${shortId(i.deploymentId)}/${i.replica} ${i.state}`).join(', ')}`,
      'sessions (newest first):',
      ...node.sessions.slice(0, 10).map((s) => `  ${s.startedAt} → ${s.lastSeenAt}`),
    ]
    return `${lines.join('\n')}\n`
  })
}

export function registerNodes(program: Command, action: Action): void {
  const nodes = program
    .command('nodes')
    .description('fleet nodes: yours, or with --all every node (operator token)')
    .option('--all', 'every node in the fleet (needs the operator token in BERTH_TOKEN)')
    .action(
      action(async (ctx, opts: { all?: boolean }) => {
        const { items } = await ctx.client().get<{ items: Node[] }>(opts.all ? '/v1/nodes' : '/v1/my/nodes')
        ctx.print({ items }, () => (items.length === 0 ? 'no nodes\n' : nodeRows(items, ctx.io.now())))
        return exitCodes.ok
      }),
    )

  nodes
    .command('get')
    .description('a node with its uptime sessions and instances')
    .argument('<id>', 'node id')
    .action(
      action(async (ctx, id: string) => {
        printDetail(ctx, await ctx.client().get<NodeDetail>(`/v1/nodes/${encodeURIComponent(id)}`))
        return exitCodes.ok
      }),
    )

  const verbs: Array<[string, string, string]> = [
    ['cordon', 'give the node no new replicas', 'cordoned'],
    ['uncordon', 'let the node take new replicas again', 'active again'],
    ['drain', 'move its replicas to other nodes, then cordon it', 'draining'],
  ]
  for (const [verb, description, done] of verbs) {
    nodes
      .command(verb)
      .description(`${description} (operator)`)
      .argument('<id>', 'node id')
      .action(
        action(async (ctx, id: string) => {
          const node = await ctx.client().post<NodeDetail>(`/v1/nodes/${encodeURIComponent(id)}/${verb}`)
          ctx.print(node, () => `${node.name} (${node.id}) is ${done}\n`)
          return exitCodes.ok
        }),
      )
  }

  nodes
    .command('earnings')
    .description('what your nodes earned: the payable balance, and per node earned and forfeited')
    .action(
      action(async (ctx) => {
        const earnings = await ctx.client().get<Earnings>('/v1/my/nodes/earnings')
        ctx.print(earnings, () => {
          const table = renderTable(
            ['ID', 'NAME', 'EARNED', 'INTERVALS', 'FORFEITED', 'INTERVALS'],
            earnings.nodes.map((n) => [
              shortId(n.id),
              n.name,
              formatUsd(n.earnedMicroUsd),
              String(n.intervalsEarned),
              formatUsd(n.forfeitedMicroUsd),
              String(n.intervalsForfeited),
            ]),
          )
          return `payable: ${formatUsd(earnings.payableMicroUsd)}\n${earnings.nodes.length === 0 ? 'no nodes\n' : table}`
        })
        return exitCodes.ok
      }),
    )

  nodes
    .command('rm')
    .description('take a node out of the fleet (operator; drain it first)')
    .argument('<id>', 'node id')
    .action(
      action(async (ctx, id: string) => {
        await ctx.client().del(`/v1/nodes/${encodeURIComponent(id)}`)
        ctx.print({ id, removed: true }, () => `removed node ${id}\n`)
        return exitCodes.ok
      }),
    )
}
