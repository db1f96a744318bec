import { createHash } from 'node:crypto'
import { and, desc, eq, sql } from 'drizzle-orm'
import type { Logger } from 'pino'
import { Counter } from 'prom-client'
import type { Config } from '../config/schema.ts'
import type { Database } from '../db/client.ts'
import type { DeploymentRow } from '../db/deployment-rows.ts'
import { deployments } from '../db/schema/index.ts'
import { describeIssues, invalidInput, summarizeIssues } from '../domain/errors.ts'
import type { Intent } from '../domain/lifecycle.ts'
import { mapWorkloads } from '../domain/services.ts'
import { type DeploymentSpec, deploymentSpecSchema, type NftBinding } from '../domain/spec.ts'
import type { EventBus } from '../events/bus.ts'
import type { Account } from '../identity/accounts.ts'
import type { Metrics } from '../metrics/registry.ts'
import { createOutboundClient, type OutboundOptions } from '../outbound/guarded-client.ts'
import type { Vault } from '../secrets/vault.ts'
import { checkHolders } from './backstop.ts'
import type { NftChains } from './chain.ts'
import {
  fetchMetadata,
  fillPlaceholders,
  needsMetadata,
  substituteId,
  type TokenMetadata,
} from './metadata.ts'
import { createOwnership } from './ownership.ts'
import type { AppliedChange } from './transfer.ts'

// NFT-bound deployments, built from the config: the holder checks the API runs before create,
// start and restart; a transfer watcher per network with collections; the two backstops; the
// collection templates. Nothing here acts on a deployment's containers: it changes desired state
// and ownership, and the reconciler does the rest.

export interface NftDeps {
  database: Database
  bus: EventBus
  config: Pick<Config, 'networks' | 'nft' | 'nftCollections' | 'outbound'>
  metrics: Pick<Metrics, 'registry' | 'chainCursorLag'>
  logger?: Logger
  /** Seals secret env values again for an NFT's next holder (collections that carry them). */
  vault: Pick<Vault, 'seal' | 'open'>
  /** For tests: RPC clients per network instead of ones built from rpcUrls. */
  chains?: NftChains
  /** For tests: name resolution for token metadata URLs, instead of the system's. */
  resolve?: OutboundOptions['resolve']
}

/** Without collections nothing can be bound (specs naming one are refused first), so no chain is read. */
const noChains: NftChains = {
  get: () => undefined,
  confirmedBlock: async (chainId) => {
    throw invalidInput(`chain ${chainId} has no NFT collections configured`)
  },
  headBlock: async (chainId) => {
    throw invalidInput(`chain ${chainId} has no NFT collections configured`)
  },
  ownerOf: async (binding) => {
    throw invalidInput(`chain ${binding.chainId} has no NFT collections configured`)
  },
  balanceOf: async (binding) => {
    throw invalidInput(`chain ${binding.chainId} has no NFT collections configured`)
  },
  tokenUri: async (binding) => {
    throw invalidInput(`chain ${binding.chainId} has no NFT collections configured`)
  },
}

export async function createNft(deps: NftDeps) {
  const { database, bus, config } = deps
  const collections = config.nftCollections
  const used = new Set(collections.map((c) => c.chainId))
  // The chain code, and viem with it (~31 MB), is loaded only when there are collections to watch.
  const chainCode = used.size > 0 ? await import('./chain.ts') : undefined
  const watcherCode = used.size > 0 ? await import('./watcher.ts') : undefined
  const chains =
    deps.chains ?? chainCode?.createNftChains(config.networks.filter((n) => used.has(n.chainId))) ?? noChains
  const ownership = createOwnership({
    db: database.db,
    chains,
    collections,
    cacheSeconds: config.nft.ownershipCacheSeconds,
  })
  const metadataClient = createOutboundClient({
    allow: config.outbound.allow,
    timeoutMs: config.nft.metadataTimeoutMs,
    maxBytes: config.nft.metadataMaxBytes,
    ...(deps.resolve ? { resolve: deps.resolve } : {}),
  })
  const stops = new Counter({
    name: 'berth_nft_stops_total',
    help: 'Deployments stopped because their NFT changed hands, by how it was found',
    labelNames: ['reason'],
    registers: [deps.metrics.registry],
  })

  const onApplied = (changes: AppliedChange[], source: 'transfer' | 'recheck' | 'sweep') => {
    for (const c of changes) {
      bus.changed(c.deploymentId, c.fromOwnerId, { intent: c.stopped })
      if (c.toOwnerId !== c.fromOwnerId) bus.changed(c.deploymentId, c.toOwnerId)
      if (c.stopped) stops.inc({ reason: c.burned ? 'burn' : source })
    }
    if (changes.length) bus.wake()
  }

  const watchers = config.networks
    .filter((n) => used.has(n.chainId))
    .map((network) =>
      watcherCode!.createNftWatcher({
        database,
        chain: chains.get(network.chainId)!,
        chains,
        collections,
        onApplied,
        vault: deps.vault,
        metrics: deps.metrics,
        ...(deps.logger ? { logger: deps.logger } : {}),
      }),
    )

  const backstop = {
    database,
    chains,
    collections,
    vault: deps.vault,
    ...(deps.logger ? { logger: deps.logger } : {}),
  }
  /** ownerOf re-read for every deployment meant to run; stops those whose holder changed. */
  const recheck = async () => {
    const changes = await checkHolders(backstop, 'live', 'recheck')
    onApplied(changes, 'recheck')
    return changes
  }
  /** The same for every bound deployment that is not deleted, stopped ones included. */
  const sweep = async () => {
    const changes = await checkHolders(backstop, 'all', 'sweep')
    onApplied(changes, 'sweep')
    return changes
  }

  /** NFT_* and OWNER_ADDRESS, set by berth whatever the spec says. */
  const nftEnv = (binding: NftBinding, owner: string) => ({
    NFT_CHAIN_ID: String(binding.chainId),
    NFT_CONTRACT: binding.contract,
    NFT_TOKEN_ID: binding.tokenId,
    OWNER_ADDRESS: owner,
  })

  /** Create: the caller must hold the token; the spec gets the NFT env. */
  async function prepareCreate(account: Account, spec: DeploymentSpec): Promise<DeploymentSpec> {
    if (!spec.nft) return spec
    await ownership.assertHolder(spec.nft, account.address)
    const env = nftEnv(spec.nft, account.address!.toLowerCase())
    // Every service gets it, as a single image does.
    return mapWorkloads(spec, (holder) => ({
      ...holder,
      env: { ...(holder.env ?? {}), ...env },
      // What berth sets is public (and changes at a handover): never one of the holder's secrets.
      ...(holder.secretEnv ? { secretEnv: holder.secretEnv.filter((name) => !(name in env)) } : {}),
    }))
  }

  /** Start and restart of a bound deployment: the caller must hold the token now. */
  async function checkIntent(account: Account, row: DeploymentRow, intent: Intent): Promise<void> {
    if (!row.spec.nft || (intent !== 'start' && intent !== 'restart')) return
    await ownership.assertHolder(row.spec.nft, account.address)
  }

  /**
   * Whether a spec runs its NFT collection's template as the operator made it, which may use the
   * registry credentials kept for templates: the template's image with the template's command and
   * no added capabilities. (Env may differ: templates fill it from each token's metadata.) A spec
   * that runs the image with a command of its own could read the image out, so it is not one.
   */
  function usesTemplateImage(spec: DeploymentSpec): boolean {
    const binding = spec.nft
    if (!binding) return false
    const collection = collections.find(
      (c) => c.chainId === binding.chainId && c.contract === binding.contract,
    )
    const template = collection?.template
    return (
      template !== undefined &&
      !spec.services &&
      template.image === spec.image &&
      JSON.stringify(template.command ?? null) === JSON.stringify(spec.command ?? null) &&
      (spec.capAdd ?? []).length === 0
    )
  }

  /** The collection's template for one token, with its metadata filled in, for the caller. */
  async function templateSpec(
    account: Account,
    binding: Omit<NftBinding, 'standard'>,
    options: { name?: string; provider?: string },
  ): Promise<DeploymentSpec> {
    const collection = collections.find(
      (c) => c.chainId === binding.chainId && c.contract === binding.contract,
    )
    if (!collection)
      throw invalidInput(`NFT collection ${binding.contract} on chain ${binding.chainId} is not configured`)
    if (!collection.template)
      throw invalidInput(`collection ${binding.contract} has no template: create the deployment with a spec`)
    const full: NftBinding = { ...binding, standard: collection.standard }
    await ownership.assertHolder(full, account.address)
    const owner = account.address!.toLowerCase()
    const { template } = collection
    const env = template.env ?? {}
    let metadata: TokenMetadata | undefined
    if (needsMetadata(env)) {
      const block = await chains.confirmedBlock(full.chainId)
      const raw = await chains.tokenUri(full, block)
      const uri = full.standard === 'erc1155' ? substituteId(raw, full.tokenId) : raw
      metadata = await fetchMetadata(uri, {
        ipfsGateway: config.nft.ipfsGateway,
        client: metadataClient,
        maxBytes: config.nft.metadataMaxBytes,
      })
    }
    const filled = fillPlaceholders(env, { ...full, owner, ...(metadata ? { metadata } : {}) })
    const parsed = deploymentSpecSchema.safeParse({
      name: options.name ?? defaultName(full),
      image: template.image,
      ...(template.command ? { command: template.command } : {}),
      env: { ...filled, ...nftEnv(full, owner) },
      ...(template.resources ? { resources: template.resources } : {}),
      ...(template.ports ? { ports: template.ports } : {}),
      ...(template.healthCheck ? { healthCheck: template.healthCheck } : {}),
      ...(template.secretEnv ? { secretEnv: template.secretEnv } : {}),
      ...(options.provider ? { provider: options.provider } : {}),
      nft: full,
    })
    // Metadata can make a value too long; say so rather than fail later.
    if (!parsed.success)
      throw invalidInput(
        `the collection template does not make a valid spec: ${summarizeIssues(describeIssues(parsed.error.issues))}`,
      )
    return parsed.data
  }

  async function listBound(ownerId: string) {
    return database.db
      .select()
      .from(deployments)
      .where(
        and(
          eq(deployments.ownerId, ownerId),
          sql`${deployments.spec} ? 'nft'`,
          sql`${deployments.status} <> 'deleted'`,
        ),
      )
      .orderBy(desc(deployments.createdAt))
  }

  const timers: NodeJS.Timeout[] = []
  const every = (seconds: number, what: string, fn: () => Promise<unknown>) => {
    let running = false
    const timer = setInterval(() => {
      if (running) return // a slow pass is not stacked on by the next
      running = true
      fn()
        .catch((error: unknown) => deps.logger?.warn({ err: error }, `${what} failed`))
        .finally(() => {
          running = false
        })
    }, seconds * 1000)
    timer.unref()
    timers.push(timer)
  }

  return {
    chains,
    ownership,
    watchers,
    recheck,
    sweep,
    prepareCreate,
    checkIntent,
    templateSpec,
    usesTemplateImage,
    listBound,
    async start() {
      for (const w of watchers) w.start()
      if (collections.length) {
        every(config.nft.recheckIntervalSeconds, 'NFT ownership recheck', recheck)
        every(config.nft.sweepIntervalSeconds, 'NFT ownership sweep', sweep)
      }
    },
    async stop() {
      for (const t of timers.splice(0)) clearInterval(t)
      await Promise.all(watchers.map((w) => w.stop()))
    },
  }
}

export type Nft = Awaited<ReturnType<typeof createNft>>

/** A DNS-label name for a token's deployment: nft-<contract prefix>-<token id, or its hash when long>. */
function defaultName(binding: NftBinding): string {
  const id =
    binding.tokenId.length <= 40
      ? binding.tokenId
      : createHash('sha256').update(binding.tokenId).digest('hex').slice(0, 16)
  return `nft-${binding.contract.slice(2, 10)}-${id}`
}
