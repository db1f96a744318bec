import { and, eq, sql } from 'drizzle-orm'
import { type AuditRecord, appendAudit } from '../audit/audit-log.ts'
import type { Db } from '../db/client.ts'
import type { DeploymentRow } from '../db/deployment-rows.ts'
import { deployments } from '../db/schema/index.ts'
import { BerthError, conflict } from '../domain/errors.ts'
import { envValueOf } from '../domain/services.ts'
import type { DeploymentSpec } from '../domain/spec.ts'
import { actingAccount, type Principal, sourceOf } from '../identity/principal.ts'
import type { ProviderRegistry } from '../providers/provider.ts'
import { isSealed } from '../secrets/envelope.ts'
import { secretEnvPlaceOf } from '../secrets/spec-secrets.ts'
import type { Vault } from '../secrets/vault.ts'
import { outputsOf } from '../templates/outputs.ts'
import { generateSecret } from '../templates/render.ts'
import { fillPlaceholders } from '../templates/template-file.ts'

// A template deployment's credentials: the generated values, opened for the one request that
// asks, with the connection details; and their rotation in the running service. Every read and
// rotation is an audit entry, written before the values leave.

export interface CredentialsDeps {
  db: Db
  vault: Pick<Vault, 'open' | 'seal'>
  providers: Pick<ProviderRegistry, 'get'>
  /** The principal's deployment (another owner's answers as missing). */
  get(principal: Principal, id: string): Promise<DeploymentRow>
}

export function createCredentials(deps: CredentialsDeps) {
  const inFlight = new Map<string, Promise<unknown>>()
  const audit = (principal: Principal, row: DeploymentRow, action: string, names: string[]): AuditRecord => ({
    ownerId: actingAccount(principal).id,
    source: sourceOf(principal),
    action,
    target: `deployment:${row.id}`,
    detail: { credentials: names },
  })

  const openEach = async (row: DeploymentRow, spec: DeploymentSpec) => {
    const out: Record<string, string> = {}
    for (const [name, envName] of Object.entries(spec.template?.credentials ?? {})) {
      const found = envValueOf(spec, envName)
      if (found === undefined) continue
      out[name] = isSealed(found.value)
        ? await deps.vault.open(secretEnvPlaceOf(row.ownerId, row.id, envName, found.service), found.value)
        : found.value
    }
    return out
  }

  /** Replaces the stored spec if it is still `from` (else 409), with the audit entry, in one transaction. */
  async function replaceSpec(
    row: DeploymentRow,
    from: DeploymentSpec,
    to: DeploymentSpec,
    entry: AuditRecord,
  ) {
    await deps.db.transaction(async (tx) => {
      const updated = await tx
        .update(deployments)
        .set({ spec: to })
        .where(and(eq(deployments.id, row.id), sql`${deployments.spec} = ${JSON.stringify(from)}::jsonb`))
        .returning({ id: deployments.id })
      if (updated.length === 0) throw conflict('the deployment changed meanwhile: try again')
      await appendAudit(tx, [entry])
    })
  }

  async function rotateNow(principal: Principal, id: string) {
    const row = await deps.get(principal, id)
    const template = row.spec.template
    const rotatable = Object.entries(template?.rotate ?? {})
    if (!template || rotatable.length === 0) {
      throw conflict('this deployment has no credentials that can be rotated')
    }
    // A template's rotate commands run in its one service; multi-service templates have none.
    if (row.spec.services) throw conflict('credentials of a multi-service deployment cannot be rotated')
    if (row.status !== 'running')
      throw conflict(`rotation needs the deployment running (it is ${row.status})`)
    const provider = deps.providers.get(row.provider)
    if (!provider?.exec) {
      throw conflict(
        `the ${row.provider} provider cannot run commands in a deployment, so nothing can be rotated there`,
      )
    }
    const fresh = Object.fromEntries(rotatable.map(([name, how]) => [name, generateSecret(how)]))
    const env = { ...row.spec.env }
    for (const [name, value] of Object.entries(fresh)) {
      const envName = template.credentials[name]!
      env[envName] = await deps.vault.seal(secretEnvPlaceOf(row.ownerId, row.id, envName), value)
    }
    const rotated: DeploymentSpec = { ...row.spec, env }
    const names = Object.keys(fresh)
    await replaceSpec(row, row.spec, rotated, audit(principal, row, 'deployment.credentials_rotate', names))
    let outcome: 'refused' | 'unknown' | undefined
    try {
      for (const [name, how] of rotatable) {
        // Only this secret's placeholder: nothing else in the command is filled now.
        const command = how.command.map((arg) =>
          fillPlaceholders(arg, (kind, key) =>
            kind === 'secrets' && key === name ? fresh[name]! : `{{${kind}.${key}}}`,
          ),
        )
        const results = await provider.exec!(row.id, command)
        // A command that did not finish may still take effect: the new values stay, and a
        // second rotation (which needs no old value) settles it.
        if (results.some((r) => r.exitCode === -1)) {
          outcome = 'unknown'
          throw new BerthError(
            'provider_unavailable',
            `rotating ${name} did not finish in time; the new values are kept: rotate again to be sure they are in use`,
          )
        }
        const failed = results.find((r) => r.exitCode !== 0)
        // The command's output is not passed on: a service may echo what it was given.
        if (results.length === 0 || failed) {
          outcome = 'refused'
          throw new BerthError(
            'provider_rejected',
            failed
              ? `rotating ${name} failed in replica ${failed.replica} (exit code ${failed.exitCode}); the old value stays`
              : `no replica is running to rotate ${name} in; the old value stays`,
          )
        }
      }
    } catch (error) {
      if (outcome !== 'unknown') {
        await replaceSpec(
          row,
          rotated,
          row.spec,
          audit(principal, row, 'deployment.credentials_rotate_undone', names),
        ).catch(() => {
          throw conflict(`${(error as Error).message}, but the deployment changed meanwhile: rotate again`)
        })
      }
      throw error
    }
    return { credentials: await openEach(row, rotated), connection: outputsOf(template, row.endpoints) }
  }

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
        appendAudit(tx, [audit(principal, row, 'deployment.credentials_read', names)]),
      )
      return { credentials: await openEach(row, row.spec), connection: outputsOf(template, row.endpoints) }
    },

    /**
     * New values for every rotatable credential, set in the running service by the template's
     * command in each running replica. The new values are stored first: a command that fails puts
     * the old ones back, and a crash between the two leaves values that another rotation (whose
     * command needs no old value) makes true.
     */
    async rotate(principal: Principal, id: string) {
      // One rotation of a deployment at a time in this process: a second one starts from the
      // values the first stored. (Across replicas, the stored spec's compare-and-set refuses the
      // later of two that overlap: 409.)
      const before = inFlight.get(id) ?? Promise.resolve()
      const mine = before.catch(() => {}).then(() => rotateNow(principal, id))
      const settled = mine.catch(() => {})
      inFlight.set(id, settled)
      try {
        return await mine
      } finally {
        if (inFlight.get(id) === settled) inFlight.delete(id)
      }
    },
  }
}

export type Credentials = ReturnType<typeof createCredentials>
