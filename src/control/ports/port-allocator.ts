import type { Database } from '../../db/client.ts'
import { ProviderError } from '../../providers/provider.ts'

// Host ports from a configured range, kept in `port_allocations`. The database's
// unique constraints are the guarantee that no two deployments or replicas share a port, across
// concurrent steps and across control planes: an allocation is one `INSERT … SELECT` of a free
// port that does nothing on a conflict, and a loser simply tries again.
//
// A port the engine cannot bind (something outside berth listens on it) is "blocked": its row loses
// its deployment, so the next allocation for that key takes another free port, and the blocked row
// keeps the port out of the range for `blockedForMs` before it is tried again. Checking ports by
// binding them here would be wrong whenever the engine runs on another host (tcp://, ssh://).

export interface PortRequest {
  deploymentId: string
  replica: number
  containerPort: number
  protocol: 'tcp' | 'udp'
}

export interface PortAllocatorOptions {
  rangeStart: number
  rangeEnd: number
  hostIp: string
  /** How long a port the engine could not bind stays out of the range. Default 10 minutes. */
  blockedForMs?: number
}

export interface PortAllocator {
  /** The key's host port: the one it already has, else a free one from the range. */
  allocate(request: PortRequest): Promise<number>
  /** Frees every port of the deployment (on delete). */
  release(deploymentId: string): Promise<void>
  /** Takes a port the engine could not bind away from its deployment and out of the range for a while. */
  block(hostPort: number, protocol: 'tcp' | 'udp'): Promise<void>
}

// Concurrent allocators all see the same lowest free port, so each round one of them wins. Later
// rounds pick at random among the first few free ports, which spreads the losers out.
const ATTEMPTS = 12

export function createPortAllocator(database: Database, options: PortAllocatorOptions): PortAllocator {
  const { rangeStart, rangeEnd, hostIp } = options
  if (!(rangeStart >= 1 && rangeEnd <= 65535 && rangeStart <= rangeEnd)) {
    throw new Error(`invalid host port range ${rangeStart}-${rangeEnd}`)
  }
  const blockedForMs = options.blockedForMs ?? 10 * 60_000

  async function existing(request: PortRequest): Promise<number | undefined> {
    const rows = await database.query<{ host_port: number }>(
      `SELECT host_port FROM port_allocations
       WHERE deployment_id = $1 AND replica = $2 AND container_port = $3 AND protocol = $4`,
      [request.deploymentId, request.replica, request.containerPort, request.protocol],
    )
    return rows[0]?.host_port
  }

  /** One try: the inserted port, or why there was none. */
  async function tryInsert(
    request: PortRequest,
    skip: number,
  ): Promise<{ inserted: number | null; candidate: number | null }> {
    const rows = await database.query<{ inserted: number | null; candidate: number | null }>(
      `WITH candidate AS (
         SELECT p FROM generate_series($5::int, $6::int) AS p
         WHERE NOT EXISTS (
           SELECT 1 FROM port_allocations a
           WHERE a.host_ip = $1 AND a.host_port = p AND a.protocol = $4
         )
         ORDER BY p OFFSET $7 LIMIT 1
       ), inserted AS (
         INSERT INTO port_allocations (host_ip, host_port, protocol, deployment_id, replica, container_port)
         SELECT $1, p, $4, $2::uuid, $3, $8 FROM candidate
         ON CONFLICT DO NOTHING
         RETURNING host_port
       )
       SELECT (SELECT host_port FROM inserted) AS inserted, (SELECT p FROM candidate) AS candidate`,
      [
        hostIp,
        request.deploymentId,
        request.replica,
        request.protocol,
        rangeStart,
        rangeEnd,
        skip,
        request.containerPort,
      ],
    )
    return rows[0] ?? { inserted: null, candidate: null }
  }

  return {
    async allocate(request) {
      const had = await existing(request)
      if (had !== undefined) return had
      // Expired blocks go first (`<=`: a block of 0 ms is over at once, even within the same tick).
      await database.query(
        `DELETE FROM port_allocations
         WHERE deployment_id IS NULL AND created_at <= now() - $1 * interval '1 millisecond'`,
        [blockedForMs],
      )
      let skip = 0
      for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
        const { inserted, candidate } = await tryInsert(request, skip)
        if (inserted !== null) return inserted
        if (candidate === null) {
          if (skip === 0) {
            throw new ProviderError(
              'permanent',
              `no free host port in ${rangeStart}-${rangeEnd} on ${hostIp} for ${request.protocol}`,
              { eventType: 'ports_exhausted' },
            )
          }
          skip = 0 // fewer free ports than skipped: look again from the lowest
          continue
        }
        // A conflict: maybe a concurrent step allocated this very key, which is then the answer.
        const raced = await existing(request)
        if (raced !== undefined) return raced
        skip = Math.floor(Math.random() * Math.min(2 ** attempt, 64))
      }
      throw new ProviderError('transient', `could not allocate a host port after ${ATTEMPTS} tries`)
    },

    async release(deploymentId) {
      await database.query('DELETE FROM port_allocations WHERE deployment_id = $1', [deploymentId])
    },

    async block(hostPort, protocol) {
      // One statement: the row, whoever had it, becomes a blocked one.
      await database.query(
        `INSERT INTO port_allocations (host_ip, host_port, protocol) VALUES ($1, $2, $3)
         ON CONFLICT (host_ip, host_port, protocol) DO UPDATE
         SET deployment_id = NULL, replica = NULL, container_port = NULL, created_at = now()`,
        [hostIp, hostPort, protocol],
      )
    },
  }
}
