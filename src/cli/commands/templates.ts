import type { Command } from 'commander'
import { exitCodes } from '../exit-codes.ts'
import { formatUsd, renderTable } from '../output.ts'
import type { Action } from './context.ts'
import { deploymentPath, resolveDeployment } from './watch.ts'

// `berth templates` (the catalog, or one template) and `berth credentials <deployment>` (what a
// template deployment was made with: shown once asked, and each read is in the audit log).

interface TemplateSize {
  name: string
  description?: string
  cpus: number
  memoryMb: number
  storageMb?: number
  price: { hourMicroUsd: string; monthMicroUsd: string }
}

export interface TemplateView {
  id: string
  name: string
  description: string
  image?: string
  services?: Array<{ name: string; image: string; replicas: number }>
  sizes: TemplateSize[]
  params?: { properties?: Record<string, { type?: string; default?: unknown; description?: string }> }
  outputs?: string[]
  credentials?: Array<{ name: string; description?: string }>
}

const sizeRows = (t: TemplateView) =>
  t.sizes.map((s) => [
    t.id,
    s.name,
    String(s.cpus),
    `${s.memoryMb} MB`,
    s.storageMb ? `${s.storageMb} MB` : '',
    `${formatUsd(s.price.monthMicroUsd)}/month`,
  ])

function describeTemplate(t: TemplateView): string {
  const runs = t.services
    ? `Services (the size is each one's): ${t.services.map((s) => `${s.name} (${s.image})${s.replicas > 1 ? ` × ${s.replicas}` : ''}`).join(', ')}`
    : `Image: ${t.image}`
  let text = `${t.name} (${t.id}): ${t.description}\n${runs}\n\n`
  text += renderTable(['TEMPLATE', 'SIZE', 'CPUS', 'MEMORY', 'STORAGE', 'PRICE'], sizeRows(t))
  const params = Object.entries(t.params?.properties ?? {})
  if (params.length) {
    text += '\nParameters (--param name=value):\n'
    for (const [name, p] of params) {
      text += `  ${name} (${p.type}${p.default === undefined ? '' : `, default ${JSON.stringify(p.default)}`})${p.description ? `: ${p.description}` : ''}\n`
    }
  }
  if (t.credentials?.length)
    text += `\nCredentials (berth credentials <deployment>): ${t.credentials.map((c) => c.name).join(', ')}\n`
  return text
}

export function registerTemplates(program: Command, action: Action): void {
  program
    .command('templates [id]')
    .description('list the one-click templates with their sizes and prices, or show one')
    .action(
      action(async (ctx, id?: string) => {
        const client = ctx.client()
        if (id) {
          const template = await client.get<TemplateView>(`/v1/templates/${encodeURIComponent(id)}`)
          ctx.print(template, () => describeTemplate(template))
          return exitCodes.ok
        }
        const { items } = await client.get<{ items: TemplateView[] }>('/v1/templates')
        ctx.print(items, () =>
          renderTable(['TEMPLATE', 'SIZE', 'CPUS', 'MEMORY', 'STORAGE', 'PRICE'], items.flatMap(sizeRows)),
        )
        return exitCodes.ok
      }),
    )

  program
    .command('credentials <deployment>')
    .description("show a template deployment's generated credentials and connection details (audited)")
    .option('--rotate', 'first set new values in the running service (where the template says how)')
    .action(
      action(async (ctx, ref: string, opts: { rotate?: boolean }) => {
        const client = ctx.client()
        const { id } = await resolveDeployment(client, ref)
        const path = `${deploymentPath(id)}/credentials`
        type Read = { credentials: Record<string, string>; connection: Record<string, string> }
        const read = opts.rotate ? await client.post<Read>(`${path}/rotate`) : await client.get<Read>(path)
        ctx.print(read, () =>
          [...Object.entries(read.credentials), ...Object.entries(read.connection)]
            .map(([key, value]) => `${key}: ${value}\n`)
            .join(''),
        )
        return exitCodes.ok
      }),
    )
}
