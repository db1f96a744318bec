import { Command, CommanderError } from 'commander'
import { ApiError } from '../client/http-client.ts'
import { BerthError } from '../domain/errors.ts'
import { packageVersion } from '../version.ts'
import { registerAgent } from './commands/agent.ts'
import { registerAudit } from './commands/audit.ts'
import { registerAuth } from './commands/auth.ts'
import {
  type Action,
  type CommandContext,
  createContext,
  type GlobalOptions,
  type Io,
  processIo,
} from './commands/context.ts'
import { registerDeploy } from './commands/deploy.ts'
import { registerEvents } from './commands/events.ts'
import { registerLifecycle } from './commands/lifecycle.ts'
import { registerList } from './commands/list.ts'
import { registerNodes } from './commands/nodes.ts'
import { registerNotify } from './commands/notify.ts'
import { registerOrg } from './commands/org.ts'
import { registerPay } from './commands/pay.ts'
import { registerQuota } from './commands/quota.ts'
import { registerServer } from './commands/server.ts'
import { registerTemplates } from './commands/templates.ts'
import { exitCodeOf, exitCodes } from './exit-codes.ts'

// `berth`: parses arguments, runs one command, and turns every outcome into an exit code. Never
// throws and never calls process.exit: bin/berth.js sets process.exitCode from the result.

export function createProgram(io: Io, onExit: (code: number, json: boolean) => void): Command {
  const program = new Command('berth')
    .description('control plane for wallet-owned deployments')
    .version(packageVersion(), '-V, --version')
    .option('--json', 'machine output: print only the JSON result')
    .option(
      '--server <url>',
      'berth server (default: $BERTH_SERVER, the last login, or http://localhost:8080)',
    )
    .option(
      '--org <slug>',
      "act for this organisation (default: $BERTH_ORG, or `berth org use`'s; '' for yourself)",
    )
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()

  const action: Action =
    <A extends unknown[]>(fn: (ctx: CommandContext, ...args: A) => Promise<number>) =>
    async (...args: unknown[]) => {
      // Commander passes the arguments, then the options, then the command itself.
      const command = args[args.length - 1] as Command
      const globals = command.optsWithGlobals<GlobalOptions>()
      const ctx = createContext(io, globals)
      onExit(exitCodes.ok, ctx.json)
      onExit(await fn(ctx, ...(args.slice(0, -1) as A)), ctx.json)
    }

  registerServer(program, action)
  registerAuth(program, action)
  registerDeploy(program, action)
  registerList(program, action)
  registerEvents(program, action)
  registerLifecycle(program, action)
  registerPay(program, action)
  registerQuota(program, action)
  registerOrg(program, action)
  registerAudit(program, action)
  registerAgent(program, action)
  registerNodes(program, action)
  registerTemplates(program, action)
  registerNotify(program, action)
  return program
}

export async function runCli(argv: string[], io: Io = processIo()): Promise<number> {
  let exitCode: number = exitCodes.ok
  let json = argv.includes('--json')
  try {
    const program = createProgram(io, (code, asJson) => {
      exitCode = code
      json = asJson
    })
    await program.parseAsync(argv, { from: 'user' })
    return exitCode
  } catch (error) {
    return report(error, io, json)
  }
}

/** Prints a failure the way the caller asked for (text or the error body) and picks the exit code. */
function report(error: unknown, io: Io, json: boolean): number {
  const code = exitCodeOf(error)
  // Commander has already printed its own usage message.
  if (error instanceof CommanderError) return code
  try {
    if (json) {
      io.stderr.write(`${JSON.stringify(errorBody(error))}\n`)
    } else {
      io.stderr.write(`error: ${(error as Error)?.message ?? String(error)}\n`)
      const details = (error as BerthError)?.details
      if (Array.isArray(details)) {
        for (const d of details) {
          const line = describeDetail(d)
          if (line && !(error as Error).message.includes(line)) io.stderr.write(`  ${line}\n`)
        }
      }
    }
  } catch {
    // A closed stderr must not turn a known failure into a crash.
  }
  return code
}

function describeDetail(detail: unknown): string | undefined {
  if (typeof detail !== 'object' || detail === null) return undefined
  const { path, message } = detail as { path?: unknown; message?: unknown }
  if (typeof message === 'string') return typeof path === 'string' ? `${path}: ${message}` : message
  return JSON.stringify(detail)
}

function errorBody(error: unknown): unknown {
  if (error instanceof ApiError) return error.body
  if (error instanceof BerthError) {
    return {
      error: {
        code: error.code,
        message: error.message,
        ...(error.details === undefined ? {} : { details: error.details }),
      },
    }
  }
  return { error: { code: 'internal', message: (error as Error)?.message ?? String(error) } }
}
