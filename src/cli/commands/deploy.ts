import { randomBytes } from 'node:crypto'
import type { Command } from 'commander'
import { invalidInput } from '../../domain/errors.ts'
import { exitCodes } from '../exit-codes.ts'
import { type Deployment, describeError, shortId } from '../output.ts'
import type { Action, CommandContext } from './context.ts'
import { followToGoal, parseSeconds } from './progress.ts'
import { buildSpec, type DeployFlags, parseNft, readSpecFile } from './spec.ts'
import type { TemplateView } from './templates.ts'
import { goals } from './watch.ts'

interface DeployOptions extends DeployFlags {
  template?: string
  size?: string
  param?: string[]
  idempotencyKey?: string
  detach?: boolean
  timeout?: number
}

const collect = (value: string, previous: string[] = []) => [...previous, value]

export function registerDeploy(program: Command, action: Action): void {
  program
    .command('deploy')
    .description('create a deployment and follow it until it runs (or fails)')
    .option('-f, --file <path>', 'a deployment spec in JSON or YAML; flags override its fields')
    .option('--name <name>', 'deployment name (a DNS label)')
    .option('--image <ref>', 'container image, e.g. nginx:1.27')
    .option('-p, --port <port>', 'container port to expose, <port>[/udp] (repeatable)', collect)
    .option('-e, --env <KEY=VALUE>', 'environment variable (repeatable)', collect)
    .option('--cpus <n>', 'CPUs, e.g. 0.5')
    .option('--memory <MB>', 'memory in MB')
    .option('--replicas <n>', 'number of replicas')
    .option('-l, --label <k=v>', 'label (repeatable)', collect)
    .option('--provider <name>', 'provider to run on (default: the server default)')
    .option('--command <cmd>', 'command: a JSON array of strings, or words split like a shell')
    .option(
      '--nft <chainId:contract:tokenId>',
      "bind to an NFT you hold (append :erc1155 for ERC-1155); without --image, deploys the collection's template",
    )
    .option('--template <id>', 'deploy a one-click template (berth templates lists them) instead of an image')
    .option('--size <size>', "the template's size, e.g. small")
    .option('--param <name=value>', 'a template parameter (repeatable)', collect)
    .option('--idempotency-key <key>', 'retry-safe key: the same key returns the same deployment')
    .option('-d, --detach', 'return once the deployment is accepted; do not follow it')
    .option('--timeout <seconds>', 'give up following after this long (exit 1)', parseSeconds)
    .action(action((ctx, opts: DeployOptions) => deploy(ctx, opts)))
}

async function deploy(ctx: CommandContext, opts: DeployOptions): Promise<number> {
  const fileSpec = opts.file ? readSpecFile(opts.file) : {}
  const client = ctx.client()
  let created: Deployment
  if (opts.template !== undefined) {
    created = await client.post<Deployment>('/v1/deployments', await templateRequest(ctx, opts), {
      headers: opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : {},
    })
  } else if (opts.nft !== undefined && opts.image === undefined && fileSpec.image === undefined) {
    // No image: the operator's template for the token's collection, filled from its metadata.
    const nft = parseNft(opts.nft)
    created = await client.post<Deployment>(`/v1/nfts/${nft.chainId}/${nft.contract}/${nft.tokenId}/deploy`, {
      ...(opts.name ? { name: opts.name } : {}),
      ...(opts.provider ? { provider: opts.provider } : {}),
    })
  } else {
    const spec = buildSpec(opts, fileSpec)
    created = await client.post<Deployment>('/v1/deployments', spec, {
      headers: opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : {},
    })
  }
  const out = ctx.io.stdout
  if (opts.detach) {
    ctx.print(created, () => `${created.id}\n`)
    return exitCodes.ok
  }
  if (!ctx.json) out.write(`deploying ${created.name} (${shortId(created.id)}) on ${created.provider}\n`)

  const { outcome, final } = await followToGoal(ctx, client, created, goals.running, {
    after: 0,
    timeoutSeconds: opts.timeout,
  })
  if (ctx.json) {
    ctx.print(final, () => '')
  } else if (outcome === 'ok') {
    out.write(`${final.name} is running (${final.id})\n`)
    for (const e of final.endpoints ?? []) out.write(`  ${e.containerPort}/${e.protocol}  ${e.url}\n`)
    for (const [key, value] of Object.entries(final.connection ?? {})) out.write(`  ${key}: ${value}\n`)
    if (final.spec.template) out.write(`credentials: berth credentials ${final.name}\n`)
  }
  if (outcome === 'ok') return exitCodes.ok
  if (!ctx.json) {
    const reason = describeError(final.error) ?? final.stopReason ?? `status ${final.status}`
    ctx.io.stderr.write(`error: deployment ${final.name} ${final.status}: ${reason}\n`)
  }
  return exitCodes.unexpected
}

/**
 * The request for a template deployment. Parameters are typed by the template's own schema (read
 * first), so `--param port=5432` is a number where the template wants one and a string where not.
 */
async function templateRequest(ctx: CommandContext, opts: DeployOptions) {
  const template = await ctx.client().get<TemplateView>(`/v1/templates/${encodeURIComponent(opts.template!)}`)
  const types = template.params?.properties ?? {}
  const params: Record<string, unknown> = {}
  for (const pair of opts.param ?? []) {
    const at = pair.indexOf('=')
    if (at < 1) throw invalidInput(`--param ${pair}: expected name=value`)
    const [name, value] = [pair.slice(0, at), pair.slice(at + 1)]
    const type = types[name]?.type
    params[name] =
      type === 'integer' && /^-?\d+$/.test(value)
        ? Number(value)
        : type === 'boolean' && (value === 'true' || value === 'false')
          ? value === 'true'
          : value
  }
  return {
    template: template.id,
    ...(opts.size ? { size: opts.size } : {}),
    // Names are unique per owner: without one, the template's id and a few random characters.
    name: opts.name ?? `${template.id}-${randomBytes(3).toString('hex')}`,
    ...(Object.keys(params).length ? { params } : {}),
  }
}
