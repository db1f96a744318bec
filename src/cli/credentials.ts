import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { BerthError } from '../domain/errors.ts'

// Sessions saved by `berth login`, one per server, in <configDir>/credentials.json (mode 0600).
// `current` is the server of the latest login: the default for commands given no --server.
// `orgs` is the organisation `berth org use` chose per server: commands act for it by default.
// `auditCheckpoints` is, per server and owner, the last audit entry `berth audit verify` found
// intact: the next verify checks that it is still there, unchanged, so that a history rewritten
// wholesale on the server (hashes recomputed) does not pass either.

const credentialSchema = z.object({
  server: z.string(),
  token: z.string(),
  address: z.string(),
  expiresAt: z.string(),
})
export type Credential = z.infer<typeof credentialSchema>

const fileSchema = z.object({
  current: z.string().optional(),
  servers: z.record(z.string(), credentialSchema).default({}),
  orgs: z.record(z.string(), z.string()).default({}),
  auditCheckpoints: z
    .record(z.string(), z.record(z.string(), z.object({ seq: z.number(), hash: z.string(), at: z.string() })))
    .default({}),
})
type CredentialsFile = z.infer<typeof fileSchema>

export interface CredentialStore {
  readonly path: string
  /** The saved session for a server, if any (expired ones included: callers decide). */
  get(server: string): Credential | undefined
  /** The server of the latest login. */
  currentServer(): string | undefined
  save(credential: Credential): void
  /** Forgets a server's session; returns whether there was one. */
  remove(server: string): boolean
  /** The organisation commands act for on this server by default (`berth org use`). */
  org(server: string): string | undefined
  /** Sets (or, with undefined, clears) that organisation. */
  useOrg(server: string, org: string | undefined): void
  /** The audit entry last verified intact for this owner on this server. */
  auditCheckpoint(server: string, owner: string): AuditCheckpoint | undefined
  saveAuditCheckpoint(server: string, owner: string, checkpoint: AuditCheckpoint): void
}

export interface AuditCheckpoint {
  seq: number
  hash: string
  /** When it was verified. */
  at: string
}

/** Server URLs as keys: no trailing slash, so `http://h:1/` and `http://h:1` are the same server. */
export function normalizeServer(server: string): string {
  let url: URL
  try {
    url = new URL(server)
  } catch {
    throw new BerthError('invalid_input', `invalid server URL: ${server}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new BerthError('invalid_input', `invalid server URL: ${server} (must be http or https)`)
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '')
}

export function createCredentialStore(configDir: string): CredentialStore {
  const path = join(configDir, 'credentials.json')

  const read = (): CredentialsFile => {
    let text: string
    try {
      text = readFileSync(path, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        return { servers: {}, orgs: {}, auditCheckpoints: {} }
      throw new BerthError('invalid_input', `cannot read ${path}: ${(error as Error).message}`, {
        cause: error,
      })
    }
    try {
      return fileSchema.parse(JSON.parse(text))
    } catch (cause) {
      throw new BerthError('invalid_input', `${path} is damaged; delete it and log in again`, { cause })
    }
  }

  const write = (file: CredentialsFile): void => {
    mkdirSync(configDir, { recursive: true, mode: 0o700 })
    // Write a sibling then rename: a crash never leaves half a file, and the token is never
    // readable by others, not even for a moment.
    const temp = `${path}.${process.pid}.tmp`
    writeFileSync(temp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 })
    chmodSync(temp, 0o600)
    renameSync(temp, path)
  }

  return {
    path,
    get: (server) => read().servers[normalizeServer(server)],
    currentServer: () => read().current,
    save(credential) {
      const server = normalizeServer(credential.server)
      const file = read()
      file.servers[server] = { ...credential, server }
      file.current = server
      write(file)
    },
    remove(server) {
      const key = normalizeServer(server)
      const file = read()
      if (!file.servers[key]) return false
      delete file.orgs[key]
      delete file.servers[key]
      if (file.current === key) file.current = Object.keys(file.servers)[0]
      write(file)
      return true
    },
    org: (server) => read().orgs[normalizeServer(server)],
    useOrg(server, org) {
      const key = normalizeServer(server)
      const file = read()
      if (org === undefined) delete file.orgs[key]
      else file.orgs[key] = org
      write(file)
    },
    auditCheckpoint: (server, owner) => read().auditCheckpoints[normalizeServer(server)]?.[owner],
    saveAuditCheckpoint(server, owner, checkpoint) {
      const key = normalizeServer(server)
      const file = read()
      file.auditCheckpoints[key] = { ...file.auditCheckpoints[key], [owner]: checkpoint }
      write(file)
    },
  }
}
