import { createHash } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { type SQL, sql } from 'drizzle-orm'
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import pg from 'pg'
import { lockDataDir } from './data-dir-lock.ts'
import * as schema from './schema/index.ts'

export type Schema = typeof schema
export type Db = PgDatabase<PgQueryResultHKT, Schema>
/** A transaction opened with `db.transaction`; it runs the same queries as `Db`. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]
export type DatabaseKind = 'pglite' | 'postgres'

export interface Database {
  kind: DatabaseKind
  db: Db
  /** Runs `fn` on a channel notification (LISTEN). Resolves once listening; returns an unsubscribe. */
  listen(channel: string, fn: (payload: string) => void): Promise<() => Promise<void>>
  /**
   * Runs one parameterised statement on the driver directly. For the hottest paths only (the
   * reconciler's claim and fenced write), where building the query through drizzle costs more
   * than running it. Rows come back in driver form (snake_case, strings for
   * dates): db/deployment-rows.ts turns deployment rows into drizzle's shape.
   */
  query<T = Record<string, unknown>>(text: string, params: unknown[]): Promise<T[]>
  /** Runs `fn` while holding a session-level advisory lock. */
  withAdvisoryLock<T>(key: number, fn: () => Promise<T>): Promise<T>
  close(): Promise<void>
}

export interface DatabaseOptions {
  databaseUrl?: string
  dataDir: string
  /** Pool size for a PostgreSQL server. */
  maxConnections?: number
}

/** Opens PGlite under `<dataDir>/db` (in memory for a `memory://` data dir) when there is no database URL, a PostgreSQL pool otherwise. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.databaseUrl
    ? openPostgres(options.databaseUrl, options.maxConnections ?? 20)
    : openPglite(options.dataDir)
}

async function openPglite(dataDir: string): Promise<Database> {
  const inMemory = dataDir.startsWith('memory://')
  const dir = inMemory ? dataDir : join(dataDir, 'db')
  if (!inMemory) mkdirSync(dir, { recursive: true })
  const lock = inMemory ? undefined : lockDataDir(dataDir)
  const client = await PGlite.create(dir, { postgresqlconf: pgliteSettings }).catch((error: unknown) => {
    lock?.release()
    throw error
  })
  const db = drizzlePglite(client, { schema }) as unknown as Db
  return {
    kind: 'pglite',
    db,
    query: async <T>(text: string, params: unknown[]) => (await client.query<T>(text, params)).rows,
    listen: (channel, fn) => client.listen(channel, fn).then((unsub) => unsub),
    // PGlite is a single connection owned by this process: nothing else can hold the lock.
    withAdvisoryLock: (_key, fn) => fn(),
    close: async () => {
      await client.close()
      lock?.release()
    },
  }
}

// One embedded database serves one process: small buffers are plenty and keep its memory low.
const pgliteSettings = [
  'shared_buffers=16MB',
  'work_mem=4MB',
  'maintenance_work_mem=16MB',
  'temp_buffers=2MB',
]

/**
 * The hot statements run as named prepared statements on PostgreSQL: each connection parses and
 * plans one once instead of on every call. The name is derived from the text, so one text is one
 * statement (the fenced write has a handful of shapes, depending on which columns it sets).
 */
const statementNames = new Map<string, string>()
function statementName(text: string): string {
  let name = statementNames.get(text)
  if (!name) {
    name = `berth_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`
    statementNames.set(text, name)
  }
  return name
}

async function openPostgres(url: string, max: number): Promise<Database> {
  const pool = new pg.Pool({ connectionString: url, max })
  // An idle client's connection error must not crash the process; the pool replaces it.
  pool.on('error', () => {})
  // Fail fast with the server's own message when it cannot be reached.
  const probe = await pool.connect()
  probe.release()
  const db = drizzlePg(pool, { schema }) as unknown as Db
  const listeners: pg.Client[] = []
  return {
    kind: 'postgres',
    db,
    query: async <T>(text: string, params: unknown[]) =>
      (await pool.query({ name: statementName(text), text, values: params })).rows as T[],
    async listen(channel, fn) {
      const client = new pg.Client({ connectionString: url })
      client.on('error', () => {})
      await client.connect()
      client.on('notification', (msg) => {
        if (msg.channel === channel) fn(msg.payload ?? '')
      })
      await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`)
      listeners.push(client)
      return async () => {
        listeners.splice(listeners.indexOf(client), 1)
        await client.end().catch(() => {})
      }
    },
    async withAdvisoryLock(key, fn) {
      const client = await pool.connect()
      try {
        await client.query('SELECT pg_advisory_lock($1)', [key])
        try {
          return await fn()
        } finally {
          await client.query('SELECT pg_advisory_unlock($1)', [key])
        }
      } finally {
        client.release()
      }
    },
    async close() {
      await Promise.all(listeners.map((c) => c.end().catch(() => {})))
      await pool.end()
    },
  }
}

/** The unique constraint a write broke (SQLSTATE 23505), looking through wrapped causes. */
export function uniqueViolation(error: unknown): string | undefined {
  for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) {
    const candidate = e as { code?: string; constraint?: string }
    if (candidate.code === '23505') return candidate.constraint ?? 'unknown'
  }
  return undefined
}

/** Runs raw SQL and returns its rows; both drivers answer with `{ rows }`. */
export async function queryRows<T>(db: Db | Tx, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown as { rows: T[] }
  return result.rows
}

/**
 * A statement written for `Database.query` ($1, $2… placeholders) as drizzle SQL, for running the
 * same text inside a drizzle transaction.
 */
export function numberedSql(text: string, params: unknown[]): SQL {
  const parts = text.split(/\$(\d+)/)
  const chunks: SQL[] = []
  parts.forEach((part, i) => {
    chunks.push(i % 2 === 0 ? sql.raw(part) : sql`${params[Number(part) - 1]}`)
  })
  return sql.join(chunks)
}
