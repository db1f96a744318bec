import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { createAudit } from '../../src/audit/audit.ts'
import type { Database } from '../../src/db/client.ts'
import { createCredentials } from '../../src/deployments/credentials.ts'
import { createDeployments } from '../../src/deployments/deployments.ts'
import { createRegistryCredentials } from '../../src/deployments/registry-credentials.ts'
import { systemSource } from '../../src/domain/actor.ts'
import { createFleet, type Fleet } from '../../src/fleet/fleet.ts'
import { createHttpApp } from '../../src/http/app.ts'
import { createApiKeys } from '../../src/identity/api-keys.ts'
import { createIdentity } from '../../src/identity/create-identity.ts'
import { createNft, type Nft } from '../../src/nft/nft.ts'
import { createNotify, type Notify, type NotifyDeps } from '../../src/notify/notify.ts'
import { createPayments } from '../../src/payments/payments.ts'
import { createQuotas } from '../../src/quotas/quotas.ts'
import { BUILT_IN_TEMPLATES, loadCatalog } from '../../src/templates/catalog.ts'
import { createAccount, type Stack } from './stack.ts'
import { testVault } from './vault.ts'

// berth's HTTP app in-process on a test stack, with the NFT service built but not started (tests
// drive its watcher with tick() and call its backstops), and users who authenticate with real API
// keys of accounts named by wallet address.

// biome-ignore lint/suspicious/noExplicitAny: tests read replies field by field and assert on them
export interface Reply<T = any> {
  status: number
  body: T
}

export type Caller = (
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
) => Promise<Reply>

export interface TestApp {
  nft: Nft
  /** Notifications running: the publisher and the sender (stopped with the stack). */
  notify: Notify
  /** The fleet, its loss sweep not started (tests sweep with the clock they give). */
  fleet: Fleet
  /** Creates an account for the wallet and returns a caller acting with one of its API keys. */
  user(address: string): Promise<Caller>
  /** Creates an account for the wallet and returns one of its API keys. */
  userKey(address: string): Promise<string>
  /** A caller with a wallet session (what creating API keys needs), for a wallet with an account. */
  session(address: string): Promise<Caller>
  /** A caller with this bearer token (an API key the test made). */
  bearer(token: string): Caller
  /** A raw request to the app, for callers that set every header themselves. */
  fetch(path: string, init: RequestInit): Promise<Response>
  /** A caller acting with the operator's admin token (the stack's config must set adminToken). */
  admin(): Caller
  metricsText(): Promise<string>
}

export async function createTestApp(
  database: Database,
  stack: Stack,
  options: { now?: () => Date; resolve?: NotifyDeps['resolve'] } = {},
): Promise<TestApp> {
  const logger = pino({ level: 'silent' })
  const nft = await createNft({
    database,
    bus: stack.bus,
    config: stack.config,
    metrics: stack.metrics,
    logger,
    vault: testVault(database.db),
  })
  const quotas = createQuotas(database.db, stack.config.quotas)
  const identity = await createIdentity({
    db: database.db,
    config: stack.config,
    quotas,
    vault: testVault(database.db),
  })
  const payments = await createPayments({
    database,
    store: stack.store,
    events: stack.events,
    config: stack.config,
    metrics: stack.metrics,
    logger,
  })
  const catalog = loadCatalog([BUILT_IN_TEMPLATES, ...stack.config.templates.dirs])
  const deployments = createDeployments({
    limits: stack.config,
    ...(options.now ? { now: options.now } : {}),
    store: stack.store,
    events: stack.events,
    bus: stack.bus,
    providers: stack.providers,
    capacity: stack.capacity,
    quotas,
    nft,
    vault: testVault(database.db),
    templates: { catalog, mirror: stack.config.images.mirror },
  })
  const fleet = createFleet({
    database,
    config: stack.config,
    siwe: identity.siwe,
    metrics: stack.metrics,
    logger,
    bus: stack.bus,
    markDue: (ids) => stack.store.markDue(ids),
    ...(options.now ? { now: options.now } : {}),
    vault: testVault(database.db),
  })
  stack.providers.add(fleet.provider)
  const notify = createNotify({
    database,
    config: stack.config,
    vault: testVault(database.db),
    logger,
    // No test asks a real DNS server: names resolve only as a test says.
    resolve:
      options.resolve ??
      (async (name) => {
        throw new Error(`${name}: tests resolve no names unless they say how`)
      }),
  })
  await notify.start()
  stack.onStop(() => notify.stop())
  const { app } = createHttpApp({
    version: 'test',
    bodyLimitBytes: 1024 * 1024,
    limits: stack.config,
    databaseKind: database.kind,
    pingDatabase: async () => true,
    deployments,
    credentials: createCredentials({
      db: database.db,
      vault: testVault(database.db),
      providers: stack.providers,
      get: deployments.get,
    }),
    registryCredentials: createRegistryCredentials({ db: database.db, vault: testVault(database.db) }),
    templates: { catalog, pricing: stack.config.pricing },
    providers: stack.providers,
    metrics: stack.metrics,
    identity,
    quotas,
    payments: {
      config: stack.config,
      deployments,
      orders: payments.orders,
      balances: payments.balances,
    },
    notify,
    audit: createAudit(database.db),
    fleet,
    logger,
  })
  const keys = createApiKeys({ db: database.db, now: () => new Date() })
  const userKey = async (address: string) => {
    const accountId = await createAccount(database, address.toLowerCase())
    return (await keys.create(accountId, { name: 'test' }, systemSource('test'))).key
  }
  const callerWith =
    (bearer: string): Caller =>
    async (method, path, body, headers = {}) => {
      const res = await app.request(path, {
        method,
        headers: {
          authorization: `Bearer ${bearer}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
      const text = await res.text()
      const isJson = (res.headers.get('content-type') ?? '').includes('json')
      return { status: res.status, body: isJson && text ? JSON.parse(text) : text || undefined }
    }
  return {
    nft,
    notify,
    fleet,
    user: async (address) => callerWith(await userKey(address)),
    async session(address) {
      const [account] = await database.query<{ id: string }>(`select id from accounts where address = $1`, [
        address.toLowerCase(),
      ])
      if (!account) throw new Error(`no account for ${address}`)
      return callerWith((await identity.sessions.create(account.id)).token)
    },
    bearer: (token) => callerWith(token),
    userKey,
    fetch: async (path, init) => app.request(path, init),
    admin() {
      if (!stack.config.adminToken) throw new Error('the test stack has no adminToken')
      return callerWith(stack.config.adminToken)
    },
    async metricsText() {
      return (await app.request('/metrics')).text()
    },
  }
}

/** A loopback HTTP server answering token metadata by path, as the test sets it. */
export async function startMetadataServer(): Promise<{
  url: string
  set(path: string, status: number, body: string): void
  /** How many requests it has received. */
  requests(): number
  stop(): Promise<void>
}> {
  const answers = new Map<string, { status: number; body: string }>()
  let received = 0
  const server: Server = createServer((req, res) => {
    received++
    const answer = answers.get(req.url ?? '')
    res.writeHead(answer?.status ?? 404, { 'content-type': 'application/json' })
    res.end(answer?.body ?? '{}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    set: (path, status, body) => answers.set(path, { status, body }),
    requests: () => received,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  }
}
