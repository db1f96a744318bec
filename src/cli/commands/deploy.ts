import type { Command } from 'commander'
import { exitCodes } from '../exit-codes.ts'
import { type Deployment, describeError, shortId } from '../output.ts'
import type { Action, CommandContext } from './context.ts'
import { followToGoal, parseSeconds } from './progress.ts'
import { buildSpec, type DeployFlags, parseNft, readSpecFile } from './spec.ts'
import { goals } from './watch.ts'

interface DeployOptions extends DeployFlags {
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
    .option('--idempotency-key <key>', 'retry-safe key: the same key returns the same deployment')
    .option('-d, --detach', 'return once the deployment is accepted; do not follow it')
    .option('--timeout <seconds>', 'give up following after this long (exit 1)', parseSeconds)
    .action(action((ctx, opts: DeployOptions) => deploy(ctx, opts)))
}

async function deploy(ctx: CommandContext, opts: DeployOptions): Promise<number> {
  const fileSpec = opts.file ? readSpecFile(opts.file) : {}
  const client = ctx.client()
  let created: Deployment
  if (opts.nft !== undefined && opts.image === undefined && fileSpec.image === undefined) {
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
  }
  if (outcome === 'ok') return exitCodes.ok
  if (!ctx.json) {
    const reason = describeError(final.error) ?? final.stopReason ?? `status ${final.status}`
    ctx.io.stderr.write(`error: deployment ${final.name} ${final.status}: ${reason}\n`)
  }
  return exitCodes.unexpected
}
