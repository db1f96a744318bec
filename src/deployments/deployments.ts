import { randomUUID } from 'node:crypto'
import type { Config } from '../config/schema.ts'
import type { Capacity } from '../control/capacity.ts'
import type { DeploymentStore } from '../control/deployment-store.ts'
import { startBudgetSpentUntil } from '../control/health.ts'
import type { DeploymentRow } from '../db/deployment-rows.ts'
import { BerthError, conflict, describeIssues, invalidInput, summarizeIssues } from '../domain/errors.ts'
import type { Intent, Status } from '../domain/lifecycle.ts'
import { describeDemand, resourceDemandOf } from '../domain/resources.ts'
import { imagesOf, serviceNamesOf, workloadsOf } from '../domain/services.ts'
import { type DeploymentSpec, deploymentSpecSchema, type NftBinding } from '../domain/spec.ts'
import type { EventBus } from '../events/bus.ts'
import type { EventLog, EventRow } from '../events/event-log.ts'
import { followEventLog } from '../events/follow.ts'
import type { Account } from '../identity/accounts.ts'
import { actingAccount, type Principal, sourceOf } from '../identity/principal.ts'
import type { Nft } from '../nft/nft.ts'
import type {
  DeploymentUsage,
  LogLine,
  LogOptions,
  Provider,
  ProviderRegistry,
} from '../providers/provider.ts'
import type { Quotas } from '../quotas/quotas.ts'
import { sealSpecSecrets } from '../secrets/spec-secrets.ts'
import type { Vault } from '../secrets/vault.ts'
import type { Catalog } from '../templates/catalog.ts'
import { renderTemplate, type TemplateRequest } from '../templates/render.ts'

// The deployments use cases: what a principal may do with deployments, in one place between the
// HTTP routes and the store. Each takes the principal it acts for and returns domain results;
// ownership, NFT holder checks and the choice of provider are decided here and nowhere else, so
// every way in (REST, WebSocket, later the CLI's own server calls) gets the same rules.

export interface DeploymentsDeps {
  /** What bounds a deployment's unbilled time: the start window and the restart budget. */
  limits: Pick<Config, 'health' | 'billing'>
  now?: () => Date
  store: DeploymentStore
  events: EventLog
  bus: EventBus
  providers: ProviderRegistry
  /** The queue of starts waiting for their provider's capacity. */
  capacity: Pick<Capacity, 'placesOf'>
  /** Admission of new deployments against the owner's quotas. */
  quotas: Pick<Quotas, 'admitDeployment'>
  /** Holder checks and templates for NFT-bound deployments; absent: bound specs are refused. */
  nft?: Pick<Nft, 'prepareCreate' | 'checkIntent' | 'templateSpec' | 'usesTemplateImage' | 'listBound'>
  /** Seals a spec's secret env values before it is stored. */
  vault: Vault
  /** The template catalog, and the image mirror applied to what templates name. */
  templates: { catalog: Catalog; mirror: Record<string, string> }
}

export type TokenRef = Omit<NftBinding, 'standard'>

/** How long one usage read of a deployment answers every request for it. */
const USAGE_FRESH_MS = 5000

export function createDeployments(deps: DeploymentsDeps) {
  const { store, events, providers, limits } = deps
  const usageReads = new Map<string, { at: number; read: Promise<DeploymentUsage> }>()
  const now = deps.now ?? (() => new Date())

  /**
   * A health check that cannot pass within the unbilled start window would run unbilled and then
   * fail every time: refused at once, naming the limit.
   */
  function checkStartWindow(spec: DeploymentSpec): void {
    for (const workload of workloadsOf(spec)) {
      const check = workload.spec.healthCheck
      if (!check) continue
      const path = workload.service === null ? 'healthCheck' : `services.${workload.service}.healthCheck`
      const needs = check.healthyThreshold * check.intervalSeconds
      const limit = limits.billing.maxUnbilledStartSeconds
      if (needs > limit) {
        throw invalidInput(
          `${path}: healthyThreshold × intervalSeconds is ${needs}s, more than billing.maxUnbilledStartSeconds (${limit}s), the longest a start may take before it must be healthy`,
          [{ path, message: `at most ${limit}s of healthyThreshold × intervalSeconds` }],
        )
      }
    }
  }

  /**
   * The provider a spec asks for, or the default; refused when this server does not offer it, or
   * when that provider does not run the spec's image for this account.
   */
  async function providerFor(spec: DeploymentSpec, account: Account): Promise<string> {
    const name = spec.provider ?? providers.defaultName
    const provider = providers.get(name)
    if (!provider) {
      throw invalidInput(`unknown provider "${name}"; available: ${providers.names().join(', ')}`, [
        { path: 'provider', message: 'not configured' },
      ])
    }
    if (spec.services && !provider.capabilities.services) {
      throw invalidInput(`the ${name} provider runs single-image deployments only, not services`, [
        { path: 'services', message: `not offered by the ${name} provider` },
      ])
    }
    await checkImage(provider.name, spec, account)
    await refuseWhatNeverFits(provider, spec)
    return name
  }

  /** A spec larger than its provider can ever run would wait in its queue forever: refused now. */
  async function refuseWhatNeverFits(provider: Provider, spec: DeploymentSpec): Promise<void> {
    const size = await provider.capacity?.()
    const need = resourceDemandOf(spec)
    if (size && (need.milliCpus > size.milliCpus || need.memoryMb > size.memoryMb)) {
      throw new BerthError(
        'provider_rejected',
        `the deployment needs ${describeDemand(need)}; ${provider.name} can run at most ${describeDemand(size)} at once`,
      )
    }
  }

  async function checkImage(providerName: string, spec: DeploymentSpec, account: Account): Promise<void> {
    const requester = {
      ownerAddress: account.address?.toLowerCase() ?? null,
      fromTemplate: deps.nft?.usesTemplateImage(spec) ?? false,
    }
    for (const image of imagesOf(spec)) await providers.get(providerName)?.checkImage?.(image, requester)
  }

  function nftOrRefuse() {
    if (!deps.nft) {
      throw invalidInput('NFT-bound deployments are not configured on this server', [
        { path: 'nft', message: 'no nftCollections configured' },
      ])
    }
    return deps.nft
  }

  /**
   * Every start gives a workload another unbilled start window, so a deployment that has used its
   * restart budget in the open window is not started again before that window ends. (A running
   * deployment asked to "start" is already started: that is not refused.)
   */
  function refuseSpentStartBudget(row: DeploymentRow, intent: Intent): void {
    if (
      intent === 'start' &&
      row.status !== 'stopped' &&
      row.status !== 'failed' &&
      row.status !== 'stopping'
    )
      return
    const until = startBudgetSpentUntil(row, now(), limits.health)
    if (until) {
      throw conflict(
        `the restart budget is spent: ${limits.health.maxRestarts} starts within ${limits.health.restartWindowSeconds}s; it can ${intent} again at ${until.toISOString()}`,
        { retryAt: until.toISOString() },
      )
    }
  }

  /** A deployment of the principal's account; another owner's answers exactly like a missing one. */
  function get(principal: Principal, id: string): Promise<DeploymentRow> {
    return store.get(actingAccount(principal).id, id)
  }

  /** Creates a deployment from a spec already checked: sealed, admitted, stored. */
  async function createChecked(
    principal: Principal,
    input: DeploymentSpec,
    options: { idempotencyKey?: string; asked?: unknown },
  ): Promise<DeploymentRow> {
    const account = actingAccount(principal)
    checkStartWindow(input)
    // A bound spec needs the caller to hold the token; it then carries the NFT's env.
    const spec = input.nft ? await nftOrRefuse().prepareCreate(account, input) : input
    return storeNew(principal, account, spec, {
      ...(options.idempotencyKey
        ? {
            idempotencyKey: options.idempotencyKey,
            requestHash: await deps.vault.fingerprint(account.id, JSON.stringify(options.asked ?? input)),
          }
        : {}),
    })
  }

  /** Stores a new deployment: its id, its spec with secret values sealed, its admission. */
  async function storeNew(
    principal: Principal,
    account: Account,
    spec: DeploymentSpec,
    keyed: { idempotencyKey?: string; requestHash?: string },
  ): Promise<DeploymentRow> {
    const id = randomUUID()
    const { row } = await store.create({
      id,
      ownerId: account.id,
      spec,
      storedSpec: await sealSpecSecrets(deps.vault, { ownerId: account.id, deploymentId: id }, spec),
      provider: await providerFor(spec, account),
      source: sourceOf(principal),
      ...keyed,
      admit: () => deps.quotas.admitDeployment(account.id, spec),
    })
    return row
  }

  return {
    get,

    /** Where each waiting deployment among `rows` stands in its provider's queue. */
    queuePlaces: (rows: readonly DeploymentRow[]) => deps.capacity.placesOf(rows),

    async create(
      principal: Principal,
      input: DeploymentSpec,
      options: { idempotencyKey?: string } = {},
    ): Promise<DeploymentRow> {
      if (input.template) {
        throw invalidInput(
          'template is set by berth: create from a template with {"template", "size", "name", "params"}',
          [{ path: 'template', message: 'not allowed in a spec' }],
        )
      }
      return createChecked(principal, input, options)
    },

    /**
     * A deployment from a catalog template: its spec rendered from the size and parameters asked,
     * with secrets generated now (stored sealed like any secret env value).
     */
    async createFromTemplate(
      principal: Principal,
      request: TemplateRequest,
      options: { idempotencyKey?: string } = {},
    ): Promise<DeploymentRow> {
      const template = deps.templates.catalog.get(request.template)
      if (!template) {
        throw invalidInput(`no template "${request.template}"; GET /v1/templates lists them`, [
          { path: 'template', message: 'unknown' },
        ])
      }
      const parsed = deploymentSpecSchema.safeParse(
        renderTemplate(template, request, { mirror: deps.templates.mirror }),
      )
      if (!parsed.success) {
        // The catalog was checked at start: a spec it cannot make is a size or name problem.
        throw invalidInput(
          `template ${template.id} cannot make this deployment: ${summarizeIssues(describeIssues(parsed.error.issues))}`,
          describeIssues(parsed.error.issues),
        )
      }
      // A replay is compared with the request: the secrets in the spec are new each time.
      return createChecked(principal, parsed.data, { ...options, asked: request })
    },

    /** "One agent per token": the collection's template, filled in for a token the caller holds. */
    async createForToken(
      principal: Principal,
      token: TokenRef,
      options: { name?: string; provider?: string },
    ): Promise<DeploymentRow> {
      const account = actingAccount(principal)
      const spec = await nftOrRefuse().templateSpec(account, token, options)
      checkStartWindow(spec)
      return storeNew(principal, account, spec, {})
    },

    list(principal: Principal, filter: { status?: Status; limit: number; offset: number }) {
      return store.list(actingAccount(principal).id, filter)
    },

    async listBound(principal: Principal): Promise<DeploymentRow[]> {
      const account = actingAccount(principal)
      return deps.nft ? deps.nft.listBound(account.id) : []
    },

    async requestIntent(principal: Principal, id: string, intent: Intent): Promise<DeploymentRow> {
      const account = actingAccount(principal)
      if (intent === 'start' || intent === 'restart') {
        const row = await get(principal, id)
        refuseSpentStartBudget(row, intent)
        // Only the token's holder may run it, and only an image it may run (a deployment that
        // changed hands, or a policy that changed since it was created, is checked again).
        if (deps.nft) await deps.nft.checkIntent(account, row, intent)
        await checkImage(row.provider, row.spec, account)
      }
      return store.requestIntent(account.id, id, intent, { source: sourceOf(principal) })
    },

    // Events written while an earlier NFT holder had the deployment are not shown to the current
    // one (handoverSeq); its own start at the transfer.
    async events(principal: Principal, id: string, afterSeq: number, limit: number): Promise<EventRow[]> {
      const row = await get(principal, id)
      return events.list(id, Math.max(afterSeq, row.handoverSeq), limit)
    },

    /** The events after `afterSeq`, then each new one as it is committed, until `signal` aborts. */
    async followEvents(
      principal: Principal,
      id: string,
      afterSeq: number,
      signal: AbortSignal,
    ): Promise<AsyncIterable<EventRow>> {
      const row = await get(principal, id)
      return followEventLog(events, deps.bus, id, Math.max(afterSeq, row.handoverSeq), signal)
    },

    /**
     * Opens the deployment's log on its provider. Rejects (a provider outage: 503) before any line
     * is sent, so the caller can still answer with an error status.
     */
    async logs(principal: Principal, id: string, options: LogOptions): Promise<AsyncIterable<LogLine>> {
      const row = await get(principal, id)
      const provider = providers.get(row.provider)
      // Until a handover has removed them, the instances there are an earlier NFT holder's.
      checkService(row.spec, options.service)
      if (!provider || row.handover) return (async function* () {})()
      return provider.logs(row.id, options)
    },

    /**
     * What the deployment uses now (CPU, memory, network), in all and per service. Reading it costs
     * the engine a sample per instance, so one read serves every request for a few seconds.
     */
    async usage(principal: Principal, id: string): Promise<DeploymentUsage> {
      const row = await get(principal, id)
      const provider = providers.get(row.provider)
      const none = { cpuPercent: 0, memoryBytes: 0, networkRxBytes: 0, networkTxBytes: 0 }
      // Until a handover has removed them, the instances there are an earlier NFT holder's.
      if (!provider || row.handover) return none
      const at = Date.now()
      for (const [key, read] of usageReads) if (at - read.at >= USAGE_FRESH_MS) usageReads.delete(key)
      const fresh = usageReads.get(row.id)
      if (fresh) return fresh.read
      const read = provider.stats(row.id)
      usageReads.set(row.id, { at, read })
      read.catch(() => usageReads.delete(row.id))
      return read
    },
  }
}

export type Deployments = ReturnType<typeof createDeployments>

/** A service named in a request must be one of the deployment's. */
function checkService(spec: DeploymentSpec, service: string | undefined): void {
  if (service === undefined) return
  const names = serviceNamesOf(spec)
  if (!names.includes(service)) {
    throw invalidInput(
      names.length === 0
        ? 'this deployment runs one image and has no services'
        : `no service named ${service} (services: ${names.join(', ')})`,
      [{ path: 'service', message: 'not a service of this deployment' }],
    )
  }
}
