import { isIP } from 'node:net'
import type { Command } from 'commander'
import { InvalidArgumentError } from 'commander'
import { exitCodes } from '../exit-codes.ts'
import { readKey } from './auth.ts'
import type { Action } from './context.ts'

// `berth agent` runs a fleet node's agent in this process until SIGTERM or SIGINT.

interface AgentFlags {
  dataDir: string
  joinToken?: string
  name?: string
  label: Record<string, string>
  keyFile?: string
  dockerHost?: string
  hostIp: string
  publicHost?: string
}

function ipAddress(value: string): string {
  if (isIP(value) === 0) throw new InvalidArgumentError('expected an IP address')
  return value
}

/** `--label region=eu --label gpu=a100`: collected into one map. */
function collectLabel(value: string, labels: Record<string, string>): Record<string, string> {
  const at = value.indexOf('=')
  if (at <= 0) throw new InvalidArgumentError('expected key=value')
  return { ...labels, [value.slice(0, at)]: value.slice(at + 1) }
}

export function registerAgent(program: Command, action: Action): void {
  program
    .command('agent')
    .description(
      "run a fleet node's agent: enroll with the server, run what it assigns on the local Docker engine, send signed heartbeats",
    )
    .option(
      '--data-dir <dir>',
      'where the agent keeps its key and node id (default ./.berth-agent)',
      './.berth-agent',
    )
    .option('--join-token <token>', 'join token from the operator (a closed fleet needs one to enroll)')
    .option('--name <name>', 'node name shown to the operator (default: node-<id>)')
    .option('--label <key=value>', 'a node label for placement (repeatable)', collectLabel, {})
    .option(
      '--key-file <path>',
      "file holding the node operator's wallet key, needed to enroll (default: $BERTH_PRIVATE_KEY)",
    )
    .option(
      '--docker-host <url>',
      'the Docker engine to run on (default: $DOCKER_HOST, else the local socket)',
    )
    .option('--host-ip <address>', 'address published ports bind to', '127.0.0.1')
    .option(
      '--public-host <address>',
      'the IP address users reach published ports on (default: the host ip; 127.0.0.1 for 0.0.0.0)',
      ipAddress,
    )
    .action(
      action(async (ctx, opts: AgentFlags) => {
        const { runAgent } = await import('../../agent/agent.ts')
        const dockerHost = opts.dockerHost ?? ctx.io.env.DOCKER_HOST
        const controller = new AbortController()
        const stop = () => controller.abort()
        process.once('SIGTERM', stop)
        process.once('SIGINT', stop)
        try {
          await runAgent({
            server: ctx.server(),
            dataDir: opts.dataDir,
            walletKey: () => readKey(ctx, opts.keyFile),
            joinToken: opts.joinToken ?? ctx.io.env.BERTH_JOIN_TOKEN,
            name: opts.name,
            labels: opts.label,
            ...(dockerHost ? { engine: { host: dockerHost } } : {}),
            hostIp: opts.hostIp,
            ...(opts.publicHost ? { publicHost: opts.publicHost } : {}),
            fetch: ctx.io.fetch,
            signal: controller.signal,
            log: (line) => ctx.io.stdout.write(`${new Date().toISOString()} ${line}\n`),
          })
        } finally {
          process.off('SIGTERM', stop)
          process.off('SIGINT', stop)
        }
        return exitCodes.ok
      }),
    )
}
