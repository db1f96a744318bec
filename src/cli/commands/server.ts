import { type Command, InvalidArgumentError } from 'commander'
import type { Action } from './context.ts'

// `serve` and `migrate` run the control plane in this process. cli/serve-entry.ts is imported only
// here, when asked, so client commands never load the server.

interface ServerOptions {
  config?: string
  port?: number
  host?: string
  dataDir?: string
  publicUrl?: string
  databaseUrl?: string
  logLevel?: string
  logFormat?: string
}

function parsePort(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('expected a port number (0-65535)')
  return n
}

/** Flags under their config key names; unset ones are left out so the file and env still apply. */
export function serverFlags(opts: ServerOptions): Record<string, unknown> {
  const { config: _config, ...rest } = opts
  return Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== undefined))
}

export function registerServer(program: Command, action: Action): void {
  program
    .command('serve')
    .description('run the control plane (HTTP API, reconciler, dashboard)')
    .option('--config <file>', 'config file (YAML or JSON)')
    .option('--port <port>', 'port to listen on (default 8080)', parsePort)
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--data-dir <dir>', 'where the embedded database and state live (default ./.berth)')
    .option('--public-url <url>', 'URL users reach berth at; its host is the sign-in domain')
    .option('--database-url <url>', 'PostgreSQL server URL (default: the embedded database)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .option('--log-format <format>', 'auto (readable on a terminal, else JSON), json or pretty')
    .action(
      action(async (_ctx, opts: ServerOptions) => {
        const { serve } = await import('../serve-entry.ts')
        return serve({ configFile: opts.config, flags: serverFlags(opts) })
      }),
    )

  program
    .command('migrate')
    .description('apply the database migrations and exit')
    .option('--config <file>', 'config file (YAML or JSON)')
    .option('--data-dir <dir>', 'where the embedded database lives (default ./.berth)')
    .option('--database-url <url>', 'PostgreSQL server URL (default: the embedded database)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .action(
      action(async (_ctx, opts: ServerOptions) => {
        const { migrate } = await import('../serve-entry.ts')
        return migrate({ configFile: opts.config, flags: serverFlags(opts) })
      }),
    )

  program
    .command('keys')
    .description('the master keys that seal every secret berth keeps')
    .command('rotate')
    .description('add a new master key, re-wrap every data key with it, retire the old one (resumable)')
    .option('--config <file>', 'config file (YAML or JSON)')
    .option('--data-dir <dir>', 'where the embedded database lives (default ./.berth)')
    .option('--database-url <url>', 'PostgreSQL server URL (default: the embedded database)')
    .option('--master-key-file <file>', 'the master key file (default <data dir>/master.key)')
    .option('--batch-size <n>', 'data keys re-wrapped per transaction (default 500)', parseBatchSize)
    .action(
      action(async (_ctx, opts: ServerOptions & { masterKeyFile?: string; batchSize?: number }) => {
        const { rotateKeys } = await import('../serve-entry.ts')
        const { batchSize, ...rest } = opts
        return rotateKeys({
          configFile: opts.config,
          flags: serverFlags(rest),
          ...(batchSize ? { batchSize } : {}),
        })
      }),
    )
}

function parseBatchSize(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new InvalidArgumentError('expected 1 to 100000')
  return n
}
