import { randomUUID } from 'node:crypto'
import { and, eq } from 'drizzle-orm'
import { z } from 'zod'
import { type AuditRecord, appendAudit } from '../audit/audit-log.ts'
import type { Db } from '../db/client.ts'
import { registryCredentials } from '../db/schema/index.ts'
import { notFound } from '../domain/errors.ts'
import { actingAccount, type Principal, sourceOf } from '../identity/principal.ts'
import type { RegistryCredential } from '../providers/provider.ts'
import type { SealedPlace, Vault } from '../secrets/vault.ts'

// An owner's credentials for its own private registries: given once, kept sealed, listed by
// registry and user name only, and opened only when one of that owner's deployments is applied
// (the provider pulls its images with them). They serve that owner alone: another owner's
// deployment of the same image never gets them.

/** `registry.example`, `registry.example:5000` or `docker.io`: a host, no scheme or path. */
const registryHost = z
  .string()
  .trim()
  .toLowerCase()
  .max(253)
  .regex(
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$/,
    'must be a registry host such as "registry.example" or "registry.example:5000"',
  )

export const registryCredentialInput = z.strictObject({
  registry: registryHost,
  username: z.string().min(1).max(256),
  password: z.string().min(1).max(4096),
})
export type RegistryCredentialInput = z.output<typeof registryCredentialInput>

export interface RegistryCredentialView {
  id: string
  registry: string
  username: string
  createdAt: string
  updatedAt: string
}

const placeOf = (ownerId: string, id: string): SealedPlace => ({
  ownerId,
  row: `registry-credential:${id}`,
  field: 'password',
})

const viewOf = (row: typeof registryCredentials.$inferSelect): RegistryCredentialView => ({
  id: row.id,
  registry: row.registry,
  username: row.username,
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
})

export function createRegistryCredentials(deps: { db: Db; vault: Pick<Vault, 'seal' | 'open'> }) {
  const { db, vault } = deps
  const audit = (principal: Principal, action: string, id: string, registry: string): AuditRecord => ({
    ownerId: actingAccount(principal).id,
    source: sourceOf(principal),
    action,
    target: `registry-credential:${id}`,
    detail: { registry },
  })

  return {
    async list(principal: Principal): Promise<RegistryCredentialView[]> {
      const rows = await db
        .select()
        .from(registryCredentials)
        .where(eq(registryCredentials.ownerId, actingAccount(principal).id))
        .orderBy(registryCredentials.registry)
      return rows.map(viewOf)
    },

    /** Sets the owner's credentials for a registry, replacing those it had there. */
    async put(principal: Principal, input: RegistryCredentialInput): Promise<RegistryCredentialView> {
      const ownerId = actingAccount(principal).id
      return db.transaction(async (tx) => {
        const [existing] = await tx
          .select({ id: registryCredentials.id })
          .from(registryCredentials)
          .where(
            and(eq(registryCredentials.ownerId, ownerId), eq(registryCredentials.registry, input.registry)),
          )
          .for('update')
        const id = existing?.id ?? randomUUID()
        const password = await vault.seal(placeOf(ownerId, id), input.password, tx)
        const now = new Date()
        const [row] = await tx
          .insert(registryCredentials)
          .values({ id, ownerId, registry: input.registry, username: input.username, password })
          .onConflictDoUpdate({
            target: [registryCredentials.ownerId, registryCredentials.registry],
            set: { username: input.username, password, updatedAt: now },
          })
          .returning()
        await appendAudit(tx, [audit(principal, 'registry_credential.set', row!.id, input.registry)])
        return viewOf(row!)
      })
    },

    async remove(principal: Principal, id: string): Promise<void> {
      const ownerId = actingAccount(principal).id
      await db.transaction(async (tx) => {
        const [row] = await tx
          .delete(registryCredentials)
          .where(and(eq(registryCredentials.id, id), eq(registryCredentials.ownerId, ownerId)))
          .returning()
        if (!row) throw notFound('registry credential')
        await appendAudit(tx, [audit(principal, 'registry_credential.delete', id, row.registry)])
      })
    },

    /** The owner's credentials, opened, for the provider applying one of its deployments. */
    async openFor(ownerId: string): Promise<RegistryCredential[]> {
      const rows = await db.select().from(registryCredentials).where(eq(registryCredentials.ownerId, ownerId))
      const out: RegistryCredential[] = []
      for (const row of rows) {
        out.push({
          registry: row.registry,
          username: row.username,
          password: await vault.open(placeOf(ownerId, row.id), row.password),
        })
      }
      return out
    },
  }
}

export type RegistryCredentials = ReturnType<typeof createRegistryCredentials>
