import { appendAudit } from '../audit/audit-log.ts'
import type { Db } from '../db/client.ts'
import type { DeploymentRow } from '../db/deployment-rows.ts'
import { conflict } from '../domain/errors.ts'
import { actingAccount, type Principal, sourceOf } from '../identity/principal.ts'
import { secretEnvPlaceOf } from '../secrets/spec-secrets.ts'
import type { Vault } from '../secrets/vault.ts'
import { outputsOf } from '../templates/outputs.ts'

// A template deployment's credentials: the generated values, opened for the one request that
// asks, and the connection details with them. Every read is an audit entry, written before the
// values leave: a read that could not be recorded does not happen.

export interface CredentialsDeps {
  db: Db
  vault: Pick<Vault, 'open'>
  /** The principal's deployment (another owner's answers as missing). */
  get(principal: Principal, id: string): Promise<DeploymentRow>
}

export function createCredentials(deps: CredentialsDeps) {
  return {
    async read(principal: Principal, id: string) {
      const row = await deps.get(principal, id)
      const template = row.spec.template
      if (!template || Object.keys(template.credentials).length === 0) {
        throw conflict(
          'this deployment has no generated credentials (it was not made from a template that has any)',
        )
      }
      const names = Object.keys(template.credentials)
      await deps.db.transaction((tx) =>
        appendAudit(tx, [
          {
            ownerId: actingAccount(principal).id,
            source: sourceOf(principal),
            action: 'deployment.credentials_read',
            target: `deployment:${row.id}`,
            detail: { credentials: names },
          },
        ]),
      )
      const credentials: Record<string, string> = {}
      for (const [name, envName] of Object.entries(template.credentials)) {
        const sealed = row.spec.env?.[envName]
        if (sealed === undefined) continue
        credentials[name] = await deps.vault.open(secretEnvPlaceOf(row.ownerId, row.id, envName), sealed)
      }
      return { credentials, connection: outputsOf(template, row.endpoints) }
    },
  }
}

export type Credentials = ReturnType<typeof createCredentials>
