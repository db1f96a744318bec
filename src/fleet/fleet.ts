import type { Logger } from 'pino'
import { publicUrlOf } from '../config/load.ts'
import type { Config } from '../config/schema.ts'
import type { Database } from '../db/client.ts'
import { lossBudgetMs } from '../domain/uptime.ts'
import type { EventBus } from '../events/bus.ts'
import type { Siwe } from '../identity/siwe.ts'
import { type Metrics, registerFleetGauges } from '../metrics/registry.ts'
import { parseAllowList } from '../outbound/address-policy.ts'
import { createImagePolicy } from '../providers/docker/image-policy.ts'
import type { Vault } from '../secrets/vault.ts'
import { createAssignmentStreams } from './assignment-stream.ts'
import { createEarnings } from './earnings.ts'
import { createEnrollment } from './enrollment.ts'
import { createFleetProvider } from './fleet-provider.ts'
import { createHeartbeatIngest } from './heartbeats.ts'
import { createJoinToken, type NewJoinToken } from './join-tokens.ts'
import { createLogRelay } from './log-relay.ts'
import { sweepLostNodes } from './loss-sweep.ts'
import { createMover } from './mover.ts'
import { createNodes } from './nodes.ts'
import { createScheduler } from './scheduler.ts'

// The community fleet: enrollment, heartbeats, node loss, the nodes as the operator and the node
// operators see them, the `fleet` provider that places deployments on them and the streams that
// tell agents what to run.

export interface FleetOptions {
  database: Database
  config: Pick<Config, 'fleet' | 'publicUrl' | 'port' | 'outbound' | 'providers'>
  siwe: Pick<Siwe, 'verifySigned'>
  metrics: Metrics
  logger: Logger
  bus: Pick<EventBus, 'nodeAssignmentsChanged' | 'onNodeAssignments'>
  /** Makes deployments due for the reconciler (their replicas' node was lost, or drains). */
  markDue: (deploymentIds: string[]) => Promise<unknown>
  now?: () => Date
  /** Opens the sealed secret env values of what nodes are assigned. */
  vault: Pick<Vault, 'open'>
}

/** How often nodes are checked for loss, replicas for moving and drains for completion. */
const SWEEP_MS = 1000

export function createFleet(options: FleetOptions) {
  const { database, metrics, logger } = options
  const settings = options.config.fleet
  const now = options.now ?? (() => new Date())
  const nodes = createNodes(database.db, now, lossBudgetMs(settings))
  registerFleetGauges(metrics.registry, () => nodes.list())
  const scheduler = createScheduler(database.db, nodes, Math.round(settings.minUptimePercent * 100), now)
  const mover = createMover(database.db, settings.rescheduleDelaySeconds)
  const logs = createLogRelay({ db: database.db, bus: options.bus, now })
  const streams = createAssignmentStreams({
    db: database.db,
    bus: options.bus,
    logs,
    clockSkewSeconds: settings.clockSkewSeconds,
    now,
    vault: options.vault,
  })
  const startedAt = now()
  const sweepOnce = async () => {
    await sweepLostNodes({ db: database.db, rule: settings, startedAt, now, logger })
    const due = await mover.due(now())
    if (due.length > 0) await options.markDue(due)
    for (const nodeId of await mover.releaseStopped(now())) options.bus.nodeAssignmentsChanged(nodeId)
    await mover.finishDrains(now())
    await logs.sweep()
  }
  let timer: NodeJS.Timeout | undefined
  let sweeping: Promise<void> = Promise.resolve()
  let stopped = false

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
    scheduler,
    streams,
    logs,
    earnings: createEarnings(database.db, settings),
    provider: createFleetProvider({
      db: database.db,
      scheduler,
      bus: options.bus,
      rescheduleDelaySeconds: settings.rescheduleDelaySeconds,
      allow: parseAllowList(options.config.outbound.allow),
      logs,
      // Registry credentials stay with the control plane: nodes pull what they can pull themselves.
      images: createImagePolicy({
        allowedRegistries: options.config.providers.docker.allowedRegistries,
        deniedRegistries: options.config.providers.docker.deniedRegistries,
        registryAuths: [],
      }),
      now,
    }),
    /** One pass of the sweep (tests call it rather than wait for the timer). */
    sweepOnce,

    start() {
      stopped = false
      let busy = false
      let missed = false
      const pass = () => {
        // A slow pass (a busy database) is not overlapped by the next; a tick that found it still
        // running starts the next as soon as it ends, so a loss is found late by that pass's
        // overrun, never by a whole skipped second.
        if (busy) {
          missed = true
          return
        }
        busy = true
        sweeping = sweepOnce()
          .catch((error: unknown) => logger.warn({ err: error }, 'fleet sweep failed'))
          .finally(() => {
            busy = false
            if (missed && !stopped) {
              missed = false
              pass()
            }
          })
      }
      timer = setInterval(pass, SWEEP_MS)
    },
    async stop() {
      stopped = true
      clearInterval(timer)
      streams.closeAll()
      // Once stopped, no pass chains another: the one running now is the last.
      await sweeping
    },
  }
}

export type Fleet = ReturnType<typeof createFleet>
