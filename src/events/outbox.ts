import type { Db, Tx } from '../db/client.ts'
import { outboxEvents } from '../db/schema/index.ts'
import type { OutboxInput } from '../domain/event-types.ts'

// Writing to the outbox. Always inside the transaction of the change the events tell about: a
// change that commits has its events, one that rolls back has none, and a crash loses neither
// (the publisher, notify/publisher.ts, fans out whatever is committed, whenever it next runs).
// The reconciler writes its deployment events in its own fenced statement (control/leases.ts).

export async function appendOutbox(tx: Db | Tx, events: readonly OutboxInput[]): Promise<void> {
  if (events.length === 0) return
  await tx.insert(outboxEvents).values(
    events.map((e) => ({
      ownerId: e.ownerId,
      type: e.type,
      deploymentId: e.deploymentId ?? null,
      payload: e.payload,
      onlyTargetId: e.onlyTargetId ?? null,
    })),
  )
}
