import { and, eq, sql } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { deployments } from '../db/schema/index.ts'
import type { DeploymentSpec } from '../domain/spec.ts'
import { sealLegacySpecSecrets } from './spec-secrets.ts'
import type { Vault } from './vault.ts'

// Deployments created before secrets were sealed keep their secret env values in the clear in
// their stored spec. Every start seals those it finds, a batch at a time: the first start of a
// berth that seals, and any later one that follows a replica of an older berth still writing
// clear values during a rolling upgrade. An interrupted pass is simply run again.

const BATCH = 200

/** Seals every stored spec's clear secret env values; returns how many specs it changed. */
export async function sealLegacySecrets(db: Db, vault: Pick<Vault, 'seal'>): Promise<number> {
  let changed = 0
  let after = '00000000-0000-0000-0000-000000000000'
  for (;;) {
    const rows = await db
      .select({ id: deployments.id, ownerId: deployments.ownerId, spec: deployments.spec })
      .from(deployments)
      .where(and(sql`${deployments.id} > ${after}`, sql`${deployments.spec} ? 'secretEnv'`))
      .orderBy(deployments.id)
      .limit(BATCH)
    if (rows.length === 0) break
    after = rows.at(-1)!.id
    for (const row of rows) {
      const spec = row.spec as DeploymentSpec
      const sealed = await sealLegacySpecSecrets(vault, { ownerId: row.ownerId, deploymentId: row.id }, spec)
      if (sealed === spec || JSON.stringify(sealed) === JSON.stringify(spec)) continue
      // Only if unchanged meanwhile (an NFT handover drops secret values: they must stay dropped).
      const updated = await db
        .update(deployments)
        .set({ spec: sealed })
        .where(and(eq(deployments.id, row.id), sql`${deployments.spec} = ${JSON.stringify(spec)}::jsonb`))
        .returning({ id: deployments.id })
      changed += updated.length
    }
  }
  return changed
}
