import { createHttpClient, type HttpClient } from '../../client/http-client.ts'
import { type ClientConfig, loadClientConfig } from '../../config/client-config.ts'
import { BerthError } from '../../domain/errors.ts'
import { type CredentialStore, createCredentialStore, normalizeServer } from '../credentials.ts'
import type { OutStream } from '../output.ts'

// What every command gets: its streams and environment (injected, so tests run commands without a
// process), the global options, and lazily built clients.

export const defaultServer = 'http://localhost:8080'

export interface Io {
  stdout: OutStream
  stderr: OutStream
  env: Record<string, string | undefined>
  fetch: typeof fetch
  now(): Date
}

export function processIo(): Io {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    fetch: globalThis.fetch,
    now: () => new Date(),
  }
}

export interface GlobalOptions {
  json?: boolean
  server?: string
  org?: string
}

export interface CommandContext {
  io: Io
  json: boolean
  config(): ClientConfig
  credentials(): CredentialStore
  /** --server, else BERTH_SERVER, else the server of the latest login, else localhost:8080. */
  server(): string
  /**
   * The organisation requests act for: --org, else BERTH_ORG, else the one `berth org use` chose
   * for this server; undefined for the personal account (`--org ''` asks for it explicitly).
   */
  org(): string | undefined
  /** A client for the server; `auth: true` (the default) requires a token. */
  client(options?: { auth?: boolean; token?: string }): HttpClient
  /** Prints `data` as JSON with --json, else what `human` returns. */
  print(data: unknown, human: () => string): void
}

export function createContext(io: Io, globals: GlobalOptions): CommandContext {
  let config: ClientConfig | undefined
  let store: CredentialStore | undefined
  const ctx: CommandContext = {
    io,
    json: globals.json === true,
    config: () => {
      config ??= loadClientConfig(io.env)
      return config
    },
    credentials: () => {
      store ??= createCredentialStore(ctx.config().configDir)
      return store
    },
    server: () =>
      normalizeServer(
        globals.server ?? ctx.config().server ?? ctx.credentials().currentServer() ?? defaultServer,
      ),
    org: () => {
      const chosen = globals.org ?? io.env.BERTH_ORG ?? ctx.credentials().org(ctx.server())
      return chosen === '' ? undefined : chosen
    },
    client(options = {}) {
      const server = ctx.server()
      const token = options.token ?? (options.auth === false ? undefined : resolveToken(ctx, server))
      const org = options.auth === false ? undefined : ctx.org()
      return createHttpClient({ server, token, fetch: io.fetch, ...(org ? { org } : {}) })
    },
    print(data, human) {
      io.stdout.write(ctx.json ? `${JSON.stringify(data, null, 2)}\n` : human())
    },
  }
  return ctx
}

/** BERTH_TOKEN beats the saved session; an expired saved session is reported as such. */
function resolveToken(ctx: CommandContext, server: string): string {
  const fromEnv = ctx.config().token
  if (fromEnv) return fromEnv
  const saved = ctx.credentials().get(server)
  if (!saved) {
    throw new BerthError('unauthorized', `not logged in to ${server}: run \`berth login\` or set BERTH_TOKEN`)
  }
  if (Date.parse(saved.expiresAt) <= ctx.io.now().getTime()) {
    throw new BerthError(
      'unauthorized',
      `the session for ${server} expired at ${saved.expiresAt}: run \`berth login\``,
    )
  }
  return saved.token
}

/** Wraps a command body: builds its context and records its exit code. */
export type Action = <A extends unknown[]>(
  fn: (ctx: CommandContext, ...args: A) => Promise<number>,
) => (...args: unknown[]) => Promise<void>
