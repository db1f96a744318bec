import { homedir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import { BerthError, describeIssues, summarizeIssues } from '../domain/errors.ts'
import { readSecretFile } from './load.ts'

// What the `berth` client commands take from the environment. Like config/load.ts for the server,
// this is the only place the CLI reads env; callers pass `env` in so tests never touch process.env.

export const privateKeySchema = z
  .string()
  .trim()
  .regex(/^(0x)?[0-9a-fA-F]{64}$/, 'must be a 32-byte hex private key (0x followed by 64 hex digits)')
  .transform((key) => (key.startsWith('0x') ? key : `0x${key}`) as `0x${string}`)

const clientConfigSchema = z.object({
  /** BERTH_PRIVATE_KEY (or BERTH_PRIVATE_KEY_FILE): the wallet key `berth login` signs with. */
  privateKey: privateKeySchema.optional(),
  /** BERTH_TOKEN (or BERTH_TOKEN_FILE): a bearer token (e.g. an API key) that beats the saved one. */
  token: z.string().trim().min(1).optional(),
  /** BERTH_SERVER: the server when --server is not given; beats the one saved by login. */
  server: z.url().optional(),
  /** $XDG_CONFIG_HOME/berth, else ~/.config/berth: where credentials.json lives. */
  configDir: z.string().min(1),
})

export type ClientConfig = z.output<typeof clientConfigSchema>

export function loadClientConfig(env: Record<string, string | undefined> = process.env): ClientConfig {
  const value = (name: string): string | undefined => {
    const direct = env[name]
    if (direct !== undefined && direct !== '') return direct
    const file = env[`${name}_FILE`]
    return file ? readSecretFile(`${name}_FILE`, file) : undefined
  }
  const home = env.HOME || homedir()
  const raw = {
    privateKey: value('BERTH_PRIVATE_KEY'),
    token: value('BERTH_TOKEN'),
    server: env.BERTH_SERVER || undefined,
    configDir: join(env.XDG_CONFIG_HOME || join(home, '.config'), 'berth'),
  }
  const result = clientConfigSchema.safeParse(raw)
  if (!result.success) {
    const names: Record<string, string> = {
      privateKey: 'BERTH_PRIVATE_KEY',
      token: 'BERTH_TOKEN',
      server: 'BERTH_SERVER',
      configDir: 'XDG_CONFIG_HOME',
    }
    // Name the variable, never echo its value: it may be a secret.
    const issues = describeIssues(result.error.issues).map((issue) => ({
      ...issue,
      path: names[issue.path] ?? issue.path,
    }))
    throw new BerthError('invalid_input', `invalid environment: ${summarizeIssues(issues)}`, {
      details: issues,
    })
  }
  return result.data
}
