import type { Logger } from 'pino'
import { publicUrlOf } from '../config/load.ts'
import type { Config } from '../config/schema.ts'
import type { Database } from '../db/client.ts'
import { lossBudgetMs } from '../domain/uptime.ts'
import type { Siwe } from '../identity/siwe.ts'
import { type Metrics, registerFleetGauges } from '../metrics/registry.ts'
import { createEnrollment } from './enrollment.ts'
import { createHeartbeatIngest } from './heartbeats.ts'
import { createJoinToken, type NewJoinToken } from './join-tokens.ts'
import { startLossSweep } from './loss-sweep.ts'
import { createNodes } from './nodes.ts'

// The community fleet: enrollment, heartbeats, node loss, and the nodes as the operator and the
// node operators see them.

export interface FleetOptions {
  database: Database
  config: Pick<Config, 'fleet' | 'publicUrl' | 'port'>
  siwe: Pick<Siwe, 'verifySigned'>
  metrics: Metrics
  logger: Logger
  now?: () => Date
}

export function createFleet(options: FleetOptions) {
  const { database, metrics, logger } = options
  const settings = options.config.fleet
  const now = options.now ?? (() => new Date())
  const nodes = createNodes(database.db, now, lossBudgetMs(settings))
  registerFleetGauges(metrics.registry, () => nodes.list())
  let sweep: { stop(): Promise<void> } | undefined

  return {
    nodes,
    settings,
    /** Where agents reach this server (the install script's default). */
    publicUrl: publicUrlOf(options.config).origin,
    enroll: createEnrollment({ db: database.db, siwe: options.siwe, open: settings.open, now }),
    heartbeats: createHeartbeatIngest({
      database,
      sessionGapSeconds: settings.sessionGapSeconds,
      clockSkewSeconds: settings.clockSkewSeconds,
      counter: metrics.heartbeats,
      now,
    }),
    createJoinToken: (input: NewJoinToken) => createJoinToken(database.db, input, now()),

    start() {
      sweep = startLossSweep({ db: database.db, rule: settings, startedAt: now(), now, logger })
    },
    async stop() {
      await sweep?.stop()
    },
  }
}

export type Fleet = ReturnType<typeof createFleet>
