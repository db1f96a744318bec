import type { Database } from '../../src/db/client.ts'

/** The types of the events written for an owner, in the order they were written. */
export async function outboxTypes(database: Database, ownerId: string): Promise<string[]> {
  const rows = await database.query<{ type: string }>(
    'select type from outbox_events where owner_id = $1 order by seq',
    [ownerId],
  )
  return rows.map((r) => r.type)
}
