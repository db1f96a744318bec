import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { ApiError, type HttpClient } from '../../client/http-client.ts'
import { privateKeySchema } from '../../config/client-config.ts'
import { BerthError } from '../../domain/errors.ts'
import { exitCodes } from '../exit-codes.ts'
import type { Action, CommandContext } from './context.ts'

const siweValidityMs = 10 * 60 * 1000

interface VerifyResponse {
  token: string
  address: string
  expiresAt: string
}

export function registerAuth(program: Command, action: Action): void {
  program
    .command('login')
    .description('sign in with a wallet key (Sign-In with Ethereum) and save the session')
    .option('--key-file <path>', 'file holding the private key (default: $BERTH_PRIVATE_KEY)')
    .action(action((ctx, opts: { keyFile?: string }) => login(ctx, opts)))

  program
    .command('logout')
    .description('end the saved session for the server and forget it')
    .action(action((ctx) => logout(ctx)))

  program
    .command('whoami')
    .description('show who the server thinks you are')
    .action(
      action(async (ctx) => {
        const me = await ctx.client().get<{ accountId: string; address: string; kind: string }>('/v1/auth/me')
        ctx.print(
          me,
          () => `${me.address ?? '(no wallet)'}  ${me.kind}  account ${me.accountId}  on ${ctx.server()}\n`,
        )
        return exitCodes.ok
      }),
    )
}

export function readKey(ctx: CommandContext, keyFile: string | undefined): `0x${string}` {
  if (keyFile === undefined) {
    const key = ctx.config().privateKey
    if (!key)
      throw new BerthError('invalid_input', 'no wallet key: pass --key-file <path> or set BERTH_PRIVATE_KEY')
    return key
  }
  let text: string
  try {
    text = readFileSync(keyFile, 'utf8')
  } catch (error) {
    throw new BerthError('invalid_input', `cannot read ${keyFile}: ${(error as Error).message}`)
  }
  const parsed = privateKeySchema.safeParse(text)
  // Never echo the file's content: it is (nearly) a secret.
  if (!parsed.success) throw new BerthError('invalid_input', `${keyFile}: ${parsed.error.issues[0]?.message}`)
  return parsed.data
}

/** Signs in to the client's server; returns the session. Exported for tests and scripts. */
export async function signInWithKey(
  client: HttpClient,
  key: `0x${string}`,
  now = new Date(),
): Promise<VerifyResponse> {
  // viem is a quarter of the CLI's start-up time; only login needs it.
  const [{ privateKeyToAccount }, { createSiweMessage }] = await Promise.all([
    import('viem/accounts'),
    import('viem/siwe'),
  ])
  const account = privateKeyToAccount(key)
  const url = new URL(client.server)
  const { nonce } = await client.post<{ nonce: string }>('/v1/auth/nonce')
  const message = createSiweMessage({
    domain: url.host,
    uri: url.origin,
    address: account.address,
    version: '1',
    chainId: 1,
    nonce,
    issuedAt: now,
    expirationTime: new Date(now.getTime() + siweValidityMs),
    statement: 'Sign in to berth',
  })
  const signature = await account.signMessage({ message })
  return client.post<VerifyResponse>('/v1/auth/verify', { message, signature })
}

async function login(ctx: CommandContext, opts: { keyFile?: string }): Promise<number> {
  const key = readKey(ctx, opts.keyFile)
  const server = ctx.server()
  const session = await signInWithKey(ctx.client({ auth: false }), key, ctx.io.now())
  const store = ctx.credentials()
  store.save({ server, token: session.token, address: session.address, expiresAt: session.expiresAt })
  // The token stays in the credentials file; printing it would put it in terminal scrollback and logs.
  ctx.print(
    { server, address: session.address, expiresAt: session.expiresAt, credentialsFile: store.path },
    () => `logged in to ${server} as ${session.address} (until ${session.expiresAt})\n`,
  )
  return exitCodes.ok
}

async function logout(ctx: CommandContext): Promise<number> {
  const server = ctx.server()
  const store = ctx.credentials()
  const saved = store.get(server)
  let warning: string | undefined
  if (saved) {
    try {
      await ctx.client({ token: saved.token }).post('/v1/auth/logout')
    } catch (error) {
      // An expired or revoked session is already logged out; anything else is worth a word.
      if (!(error instanceof ApiError && error.code === 'unauthorized')) {
        warning = `the server did not confirm the logout (${(error as Error).message}); forgetting the session anyway`
      }
    }
    store.remove(server)
  }
  if (warning) ctx.io.stderr.write(`warning: ${warning}\n`)
  ctx.print({ server, loggedOut: saved !== undefined }, () =>
    saved ? `logged out of ${server}\n` : `not logged in to ${server}\n`,
  )
  return exitCodes.ok
}
