import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { sql } from 'drizzle-orm'
import type { Database } from '../db/client.ts'

// Live-update fan-out. The database holds every event; this only says "look again". Within one
// process an EventEmitter carries it; on PostgreSQL, NOTIFY carries it to the other replicas
// (PGlite is single-process, so the in-process signal is all there is).

const CHANGED_CHANNEL = 'berth_deployment_changed'
const WAKE_CHANNEL = 'berth_reconcile_wake'
const FLEET_CHANNEL = 'berth_fleet_assignments'
/** Appended to a changed item (`id:owner:intent`) when what the deployment is meant to be changed. */
const INTENT_MARK = 'intent'
const ITEMS_PER_NOTIFY = 90

export interface EventBus {
  /**
   * A deployment's row or events changed (after commit). `intent` marks a change of what is
   * wanted (stop, start, restart, delete), which work in flight for the deployment must look at.
   */
  changed(deploymentId: string, ownerId: string, options?: { intent?: boolean }): void
  /** New work exists for the reconciler. */
  wake(): void
  onChanged(deploymentId: string, fn: () => void): () => void
  /** Only changes of intent, from this process or another replica. */
  onIntent(deploymentId: string, fn: () => void): () => void
  onOwnerChanged(ownerId: string, fn: (deploymentId: string) => void): () => void
  onWake(fn: () => void): () => void
  /** What a fleet node is assigned changed (after commit): its agent's stream sends it again. */
  nodeAssignmentsChanged(nodeId: string): void
  onNodeAssignments(nodeId: string, fn: () => void): () => void
  start(): Promise<void>
  stop(): Promise<void>
}

export function createEventBus(database: Database): EventBus {
  // This process also LISTENs on the channels it notifies; its own notifications come back and
  // are dropped by this tag (it already told its own listeners, at once).
  const origin = randomUUID()
  const emitter = new EventEmitter()
  emitter.setMaxListeners(0)
  const unlisten: Array<() => Promise<void>> = []
  const remote = database.kind === 'postgres'

  const emitChanged = (payload: string) => {
    for (const item of payload.split(',')) {
      const [deploymentId, ownerId, mark] = item.split(':')
      if (!deploymentId || !ownerId) continue
      emitter.emit(`d:${deploymentId}`)
      if (mark === INTENT_MARK) emitter.emit(`i:${deploymentId}`)
      emitter.emit(`o:${ownerId}`, deploymentId)
    }
  }

  // Changes are sent to other replicas in batches (one NOTIFY per tick), not one round trip per
  // write. An item is at most 81 bytes (two uuids, the intent mark, a comma), so 90 of them and the
  // origin tag stay within NOTIFY's 8000-byte payload.
  const pendingChanges = new Set<string>()
  let flushScheduled = false
  let wakeScheduled = false
  const flushChanges = () => {
    flushScheduled = false
    const items = [...pendingChanges]
    pendingChanges.clear()
    for (let i = 0; i < items.length; i += ITEMS_PER_NOTIFY) {
      notify(CHANGED_CHANNEL, items.slice(i, i + ITEMS_PER_NOTIFY).join(','))
    }
  }

  const notify = (channel: string, payload: string) => {
    if (!remote) return
    // Fire and forget: a lost notification only delays a live view until its next poll.
    database.db.execute(sql`select pg_notify(${channel}, ${`${origin}|${payload}`})`).catch(() => {})
  }

  const on = <A extends unknown[]>(name: string, fn: (...args: A) => void) => {
    emitter.on(name, fn as (...args: unknown[]) => void)
    return () => {
      emitter.off(name, fn as (...args: unknown[]) => void)
    }
  }

  return {
    changed(deploymentId, ownerId, options = {}) {
      const item = `${deploymentId}:${ownerId}${options.intent ? `:${INTENT_MARK}` : ''}`
      emitChanged(item)
      if (!remote) return
      pendingChanges.add(item)
      if (!flushScheduled) {
        flushScheduled = true
        setImmediate(flushChanges)
      }
    },
    wake() {
      emitter.emit('wake')
      if (!remote || wakeScheduled) return
      wakeScheduled = true
      setImmediate(() => {
        wakeScheduled = false
        notify(WAKE_CHANNEL, '')
      })
    },
    onChanged: (deploymentId, fn) => on(`d:${deploymentId}`, fn),
    onIntent: (deploymentId, fn) => on(`i:${deploymentId}`, fn),
    onOwnerChanged: (ownerId, fn) => on(`o:${ownerId}`, fn),
    onWake: (fn) => on('wake', fn),
    nodeAssignmentsChanged(nodeId) {
      emitter.emit(`n:${nodeId}`)
      notify(FLEET_CHANNEL, nodeId)
    },
    onNodeAssignments: (nodeId, fn) => on(`n:${nodeId}`, fn),
    async start() {
      if (!remote) return
      const fromOthers = (fn: (payload: string) => void) => (message: string) => {
        const bar = message.indexOf('|')
        if (message.slice(0, bar) !== origin) fn(message.slice(bar + 1))
      }
      unlisten.push(await database.listen(CHANGED_CHANNEL, fromOthers(emitChanged)))
      unlisten.push(
        await database.listen(
          WAKE_CHANNEL,
          fromOthers(() => emitter.emit('wake')),
        ),
      )
      unlisten.push(
        await database.listen(
          FLEET_CHANNEL,
          fromOthers((nodeId) => emitter.emit(`n:${nodeId}`)),
        ),
      )
    },
    async stop() {
      await Promise.all(unlisten.splice(0).map((u) => u()))
      emitter.removeAllListeners()
    },
  }
}
