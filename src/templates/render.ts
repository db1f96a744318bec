import { randomInt } from 'node:crypto'
import { describeIssues, invalidInput, summarizeIssues } from '../domain/errors.ts'
import type { DeploymentSpecInput, TemplateRef } from '../domain/spec.ts'
import { credentialEnvOf } from './catalog.ts'
import { type ParamValues, paramsSchemaOf } from './params.ts'
import {
  fillPlaceholders,
  placeholdersOf,
  type SecretDef,
  type ServiceDef,
  type TemplateFile,
} from './template-file.ts'

// A template, a size and a user's parameters → the spec of a deployment. Generated secrets go
// into the env variables that name them, which are listed in `secretEnv` (so they are stored
// sealed and never shown); the spec keeps which template made it (`template`).

export interface TemplateRequest {
  template: string
  size?: string | undefined
  name: string
  params?: Record<string, unknown> | undefined
}

const ALPHABETS: Record<SecretDef['alphabet'], string> = {
  alphanumeric: 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
  hex: '0123456789abcdef',
}

/** A secret from the system's secure random source, each character chosen without bias. */
export function generateSecret(def: SecretDef): string {
  const alphabet = ALPHABETS[def.alphabet]
  return Array.from({ length: def.length }, () => alphabet[randomInt(alphabet.length)]).join('')
}

/** The size asked for, or the template's only size; refused (naming the sizes) otherwise. */
export function sizeOf(t: TemplateFile, asked: string | undefined): string {
  const sizes = Object.keys(t.sizes)
  const size = asked ?? (sizes.length === 1 ? sizes[0] : undefined)
  if (size && size in t.sizes) return size
  throw invalidInput(
    asked
      ? `template ${t.id} has no size "${asked}"; sizes: ${sizes.join(', ')}`
      : `give a size: ${sizes.join(', ')}`,
    [{ path: 'size', message: `one of ${sizes.join(', ')}` }],
  )
}

export function validParams(t: TemplateFile, given: Record<string, unknown> | undefined): ParamValues {
  const parsed = paramsSchemaOf(t).safeParse(given ?? {})
  if (!parsed.success) {
    const issues = describeIssues(parsed.error.issues).map((i) => ({ ...i, path: `params.${i.path}` }))
    throw invalidInput(`invalid parameters for template ${t.id}: ${summarizeIssues(issues)}`, issues)
  }
  return parsed.data as ParamValues
}

export function renderTemplate(
  t: TemplateFile,
  request: TemplateRequest,
  options: { mirror: Record<string, string>; secret?: (def: SecretDef) => string },
): DeploymentSpecInput {
  const size = sizeOf(t, request.size)
  const params = validParams(t, request.params)
  const secrets = Object.fromEntries(
    Object.entries(t.secrets).map(([name, def]) => [name, (options.secret ?? generateSecret)(def)]),
  )
  const fill = (text: string) =>
    fillPlaceholders(text, (kind, name) =>
      kind === 'secrets' ? secrets[name]! : kind === 'deployment' ? request.name : String(params[name]),
    )
  const { cpus, memoryMb, storageMb } = t.sizes[size]!
  /** One service of the template as the workload fields of a spec, everything filled in. */
  const workloadOf = (service: ServiceDef) => {
    const env = Object.fromEntries(
      Object.entries(service.env ?? {}).map(([key, value]) => [key, fill(value)]),
    )
    const secretEnv = Object.entries(service.env ?? {})
      .filter(([, value]) => placeholdersOf(value).some((p) => p.kind === 'secrets'))
      .map(([key]) => key)
    return {
      image: options.mirror[service.image] ?? service.image,
      ...(service.command ? { command: service.command.map(fill) } : {}),
      ...(Object.keys(env).length ? { env } : {}),
      ...(secretEnv.length ? { secretEnv } : {}),
      ...(service.ports ? { ports: service.ports } : {}),
      ...(service.healthCheck ? { healthCheck: service.healthCheck } : {}),
      ...(service.volumes
        ? {
            volumes: service.volumes.map(({ storage, ...v }) => ({
              ...v,
              ...(storage && storageMb ? { sizeMb: storageMb } : {}),
            })),
          }
        : {}),
      ...(service.capAdd ? { capAdd: service.capAdd } : {}),
      // Storage is its volumes' size, billed and counted against quotas by that size.
      resources: { cpus, memoryMb },
    }
  }
  const ref: TemplateRef = {
    id: t.id,
    size,
    params,
    // Parameters are filled in now; where the ports answer is filled in when the view is made.
    outputs: Object.fromEntries(
      Object.entries(t.outputs).map(([key, value]) => [
        key,
        fillPlaceholders(value, (kind, name) =>
          kind === 'params' ? String(params[name]) : `{{${kind}:${name}}}`,
        ),
      ]),
    ),
    credentials: Object.fromEntries(Object.keys(t.secrets).map((name) => [name, credentialEnvOf(t, name)!])),
    rotate: Object.fromEntries(
      Object.entries(t.secrets).flatMap(([name, def]) =>
        def.rotate
          ? [
              [
                name,
                {
                  // Parameters now; the new value when a rotation runs it.
                  command: def.rotate.map((arg) =>
                    fillPlaceholders(arg, (kind, key) =>
                      kind === 'params' ? String(params[key]) : `{{secrets.${key}}}`,
                    ),
                  ),
                  length: def.length,
                  alphabet: def.alphabet,
                },
              ],
            ]
          : [],
      ),
    ),
  }
  if (t.services) {
    return {
      name: request.name,
      services: t.services.map((service) => ({
        name: service.name,
        ...workloadOf(service),
        ...(service.replicas > 1 ? { replicas: service.replicas } : {}),
        ...(service.dependsOn ? { dependsOn: service.dependsOn } : {}),
      })),
      template: ref,
    }
  }
  const service = t.service!
  return {
    name: request.name,
    ...workloadOf(service),
    template: ref,
  }
}
