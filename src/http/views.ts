import type { DeploymentRow } from '../db/deployment-rows.ts'
import type { EventRow } from '../events/event-log.ts'
import { actingAccount, ownerLabel, type Principal } from '../identity/principal.ts'
import { withoutSecretValues } from '../secrets/spec-secrets.ts'
import { outputsOf } from '../templates/outputs.ts'
import { resourceProgressOf } from '../templates/resource-progress.ts'

/**
 * The public JSON shape of a deployment, as shown to the principal it belongs to; `place` is its
 * place in its provider's queue when it waits for capacity (and the caller looked it up).
 */
export function deploymentView(row: DeploymentRow, viewer: Principal, place?: number) {
  return {
    id: row.id,
    name: row.name,
    owner: ownerLabel(actingAccount(viewer)),
    status: row.status,
    desiredState: row.desiredState,
    provider: row.provider,
    // Secret env values are named, never shown (a template's credentials have their own route).
    spec: withoutSecretValues(row.spec) as unknown as Record<string, unknown>,
    progress: {
      stage: row.stage,
      percent: row.percent,
      // Made from a template: the same progress in the six stages of one-click resources.
      ...(row.spec.template ? { resource: resourceProgressOf(row.stage) } : {}),
    },
    endpoints: row.endpoints,
    ...(row.spec.template ? { connection: outputsOf(row.spec.template, row.endpoints) } : {}),
    ...(row.stopReason ? { stopReason: row.stopReason } : {}),
    ...(row.error ? { error: row.error } : {}),
    ...(row.waitReason
      ? { waiting: { reason: row.waitReason, ...(place === undefined ? {} : { place }) } }
      : {}),
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  }
}

export function eventView(event: EventRow) {
  return {
    seq: event.seq,
    type: event.type,
    ...(event.status ? { status: event.status } : {}),
    ...(event.stage ? { stage: event.stage } : {}),
    ...(event.percent !== null ? { percent: event.percent } : {}),
    ...(event.message ? { message: event.message } : {}),
    ...(event.data !== null && event.data !== undefined ? { data: event.data } : {}),
    ...(event.actor ? { actor: event.actor } : {}),
    at: event.at.toISOString(),
  }
}
