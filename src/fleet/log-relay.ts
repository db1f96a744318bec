import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import type { Db } from '../db/client.ts'
import { numberedSql, queryRows } from '../db/client.ts'
import { abortableDelay } from '../domain/delay.ts'
import { BerthError, describeIssues, invalidInput, summarizeIssues, unauthorized } from '../domain/errors.ts'
import { withoutLoneSurrogates } from '../domain/text.ts'
import type { EventBus } from '../events/bus.ts'
import type { LogLine } from '../providers/provider.ts'
import { agentSignatureValid, publicKeyObjectOf } from './agent-key.ts'
import { unknownNode } from './heartbeat-writer.ts'

// Logs of fleet deployments, read from the nodes on request. Reading opens one request per node
// running the deployment; the node's assignment stream hands it to the agent (`logs` event); the
// agent reads its engine's log with the docker provider's code and posts the lines back in signed,
// numbered batches (`POST /v1/fleet/logs`); the reader takes them from the database, so the
// control plane replica the agent posts to need not be the one the reader is on. When the reader
// stops, its requests are deleted and the agent's next batch is answered 410: it stops too.

/** A request nobody reads any more is dropped this long after the reader last showed it was there. */
const REQUEST_TTL_MS = 60_000
/** A reader not following waits this long for nodes to send what they have. */
const SNAPSHOT_WAIT_MS = 10_000
const POLL_MS = 200
/** A request handed to a node that no batch answered within this is handed to it again. */
const HAND_AGAIN_MS = 15_000
/** Lines a followed request may hold unread before its node is told to wait (429). */
const MAX_UNREAD_LINES = 5000

export interface LogRequest {
  requestId: string
  deploymentId: string
  tail: number
  follow: boolean
}

export const logBatchSchema = z.strictObject({
  nodeId: z.uuid(),
  requestId: z.uuid(),
  /** 1, 2, 3 … per request: a batch not above the last is a replay and is refused. */
  batch: z.number().int().min(1).max(1_000_000_000),
  lines: z
    .array(
      z.strictObject({
        at: z.iso
          .datetime({ offset: true })
          // A time PostgreSQL can hold (an offset of a day, or the year 0, it cannot).
          .refine((at) => {
            const ms = Date.parse(at)
            return ms >= Date.UTC(2000, 0, 1) && ms < Date.UTC(2200, 0, 1)
          }, 'a time between the years 2000 and 2200'),
        stream: z.enum(['stdout', 'stderr']),
        text: z.string().max(16_384),
      }),
    )
    .max(1000),
  /** The agent has sent all it will (a request that does not follow). */
  done: z.boolean(),
})
export type LogBatch = z.output<typeof logBatchSchema>

interface LineRow {
  id: string | number
  request_id: string
  at: Date | string
  stream: 'stdout' | 'stderr'
  text: string
}

/** PostgreSQL keeps neither NULs nor lone surrogates in text: both become U+FFFD. */
const storable = (text: string) => withoutLoneSurrogates(text).replaceAll('\0', '\uFFFD')

export function createLogRelay(options: {
  db: Db
  bus: Pick<EventBus, 'nodeAssignmentsChanged'>
  now: () => Date
}) {
  const { db, bus, now } = options
  const expiry = () => new Date(now().getTime() + REQUEST_TTL_MS)

  const drop = (ids: string[]) =>
    db.execute(
      numberedSql(
        'delete from fleet_log_requests where id = any(array(select value::uuid from jsonb_array_elements_text($1::jsonb)))',
        [JSON.stringify(ids)],
      ),
    )

  /** Lines of one request after `after`, in the order they were written. */
  const linesAfter = (requestId: string, after: number) =>
    queryRows<LineRow>(
      db,
      numberedSql(
        `select id, request_id, at, stream, text from fleet_log_lines
         where request_id = $1 and id > $2 order by id limit 1000`,
        [requestId, after],
      ),
    )
  const lineOf = (row: LineRow): LogLine => ({ at: new Date(row.at), stream: row.stream, text: row.text })

  /**
   * A cursor per request: ids of lines of one request grow in the order they commit (its batches
   * take turns on the request's row), while lines of different requests may commit out of order.
   */
  const reader = (ids: string[]) => {
    const cursors = new Map(ids.map((id) => [id, 0]))
    return async (): Promise<LineRow[]> => {
      const rows: LineRow[] = []
      for (const id of ids) {
        const fresh = await linesAfter(id, cursors.get(id)!)
        if (fresh.length > 0) cursors.set(id, Number(fresh.at(-1)!.id))
        rows.push(...fresh)
      }
      return rows
    }
  }
  const idList = (ids: string[]) => JSON.stringify(ids)
  const IN_IDS = 'any(array(select value::uuid from jsonb_array_elements_text($1::jsonb)))'

  return {
    /**
     * Asks each node for the deployment's log. Not following: the last `tail` lines over all nodes
     * (those that answer within 10 s), in time order. Following: the tail, then lines as they come.
     */
    async open(
      deploymentId: string,
      nodeIds: string[],
      request: { tail: number; follow: boolean; signal: AbortSignal },
    ): Promise<AsyncIterable<LogLine>> {
      const ids = nodeIds.map(() => randomUUID())
      if (ids.length === 0) return (async function* () {})()
      const perNode = Math.ceil(request.tail / ids.length)
      await db.execute(
        numberedSql(
          `insert into fleet_log_requests (id, node_id, deployment_id, tail, follow, expires_at)
           select r.id, r.node, $2, $3, $4, $5 from jsonb_to_recordset($1::jsonb) as r(id uuid, node uuid)`,
          [
            JSON.stringify(ids.map((id, i) => ({ id, node: nodeIds[i] }))),
            deploymentId,
            perNode,
            request.follow,
            expiry(),
          ],
        ),
      )
      for (const nodeId of nodeIds) bus.nodeAssignmentsChanged(nodeId)
      const { signal, follow, tail } = request
      const readNew = reader(ids)

      return (async function* () {
        try {
          if (!follow) {
            const deadline = Date.now() + SNAPSHOT_WAIT_MS
            const lines: LogLine[] = []
            for (;;) {
              const rows = await readNew()
              lines.push(...rows.map(lineOf))
              if (Date.now() >= deadline || signal.aborted) break
              if (rows.length > 0) continue
              const [pending] = await queryRows<{ open: number }>(
                db,
                numberedSql(
                  `select count(*)::int as open from fleet_log_requests where id = ${IN_IDS} and not done`,
                  [idList(ids)],
                ),
              )
              if (pending!.open === 0) {
                // The last batch may have committed after the read above: read once more.
                lines.push(...(await readNew()).map(lineOf))
                break
              }
              await abortableDelay(POLL_MS, signal).catch(() => undefined)
            }
            lines.sort((a, b) => a.at.getTime() - b.at.getTime())
            yield* lines.slice(Math.max(0, lines.length - tail))
            return
          }
          let touched = Date.now()
          while (!signal.aborted) {
            const rows = await readNew()
            for (const row of rows) yield lineOf(row)
            if (rows.length > 0) {
              // Read lines are not kept: what a node sends is held only until it is read.
              await db.execute(
                numberedSql(
                  `delete from fleet_log_lines l using jsonb_to_recordset($1::jsonb) as r(request uuid, upto bigint)
                   where l.request_id = r.request and l.id <= r.upto`,
                  [
                    JSON.stringify(
                      ids.map((id) => ({
                        request: id,
                        upto: Math.max(
                          0,
                          ...rows.filter((r) => r.request_id === id).map((r) => Number(r.id)),
                        ),
                      })),
                    ),
                  ],
                ),
              )
            }
            if (Date.now() - touched > REQUEST_TTL_MS / 3) {
              touched = Date.now()
              const kept = await queryRows(
                db,
                numberedSql(
                  `update fleet_log_requests set expires_at = $2 where id = ${IN_IDS} returning id`,
                  [idList(ids), expiry()],
                ),
              )
              // Swept while the reader was away: nothing more will come.
              if (kept.length === 0) return
            }
            if (rows.length === 0) await abortableDelay(POLL_MS, signal).catch(() => undefined)
          }
        } finally {
          await drop(ids)
        }
      })()
    },

    /**
     * The node's requests to hand to it now: those not handed out yet, and those handed out a
     * while ago that no batch answered (the stream they went out on may have broken).
     */
    async claim(nodeId: string): Promise<LogRequest[]> {
      const at = now()
      const rows = await queryRows<{ id: string; deployment_id: string; tail: number; follow: boolean }>(
        db,
        numberedSql(
          `update fleet_log_requests set sent = true, handed_at = $2
           where node_id = $1 and expires_at > $2
             and (not sent or (last_batch = 0 and handed_at < $3))
           returning id, deployment_id, tail, follow`,
          [nodeId, at, new Date(at.getTime() - HAND_AGAIN_MS)],
        ),
      )
      return rows.map((r) => ({
        requestId: r.id,
        deploymentId: r.deployment_id,
        tail: r.tail,
        follow: r.follow,
      }))
    },

    /** A batch of lines from an agent, signed with its key over the exact body. */
    async accept(body: string, signature: string | undefined): Promise<void> {
      if (!signature) throw unauthorized('missing signature')
      let json: unknown
      try {
        json = JSON.parse(body)
      } catch {
        throw invalidInput('log batch is not JSON')
      }
      const parsed = logBatchSchema.safeParse(json)
      if (!parsed.success) {
        const issues = describeIssues(parsed.error.issues)
        throw invalidInput(`invalid log batch: ${summarizeIssues(issues)}`, issues)
      }
      const batch = parsed.data
      const [node] = await queryRows<{ public_key: string }>(
        db,
        numberedSql('select public_key from fleet_nodes where id = $1 and removed_at is null', [
          batch.nodeId,
        ]),
      )
      if (!node) throw unknownNode(batch.nodeId)
      if (!agentSignatureValid(publicKeyObjectOf(node.public_key), body, signature)) {
        throw unauthorized('bad signature: it does not verify with the node’s agent key')
      }
      await db.transaction(async (tx) => {
        const [request] = await queryRows<{
          last_batch: number
          tail: number
          follow: boolean
          held: number
        }>(
          tx,
          numberedSql(
            `select last_batch, tail, follow,
               (select count(*)::int from fleet_log_lines l where l.request_id = r.id) as held
             from fleet_log_requests r
             where id = $1 and node_id = $2 and expires_at > $3 for update`,
            [batch.requestId, batch.nodeId, now()],
          ),
        )
        if (!request) {
          throw new BerthError('not_found', `log request ${batch.requestId} is over: stop sending`)
        }
        if (batch.batch <= request.last_batch) {
          throw invalidInput(`batch ${batch.batch} is not after the last one (${request.last_batch})`)
        }
        // A node sends no more than it was asked for, and no faster than the reader reads.
        const room = request.follow ? MAX_UNREAD_LINES : request.tail
        if (request.held + batch.lines.length > room) {
          throw request.follow
            ? new BerthError('rate_limited', 'the reader is behind: send the next batch later')
            : invalidInput(`more lines than the ${request.tail} asked for`)
        }
        await tx.execute(
          numberedSql('update fleet_log_requests set last_batch = $2, done = $3 where id = $1', [
            batch.requestId,
            batch.batch,
            batch.done,
          ]),
        )
        if (batch.lines.length === 0) return
        await tx.execute(
          numberedSql(
            `insert into fleet_log_lines (request_id, at, stream, text)
             select $1, l.at, l.stream, l.text from jsonb_to_recordset($2::jsonb) as l(at timestamptz, stream text, text text)`,
            [
              batch.requestId,
              JSON.stringify(
                batch.lines.map((l) => ({ ...l, at: new Date(l.at).toISOString(), text: storable(l.text) })),
              ),
            ],
          ),
        )
      })
    },

    /** Drops requests whose reader is gone (it stopped touching them). */
    async sweep(): Promise<void> {
      await db.execute(numberedSql('delete from fleet_log_requests where expires_at < $1', [now()]))
    },
  }
}

export type LogRelay = ReturnType<typeof createLogRelay>
