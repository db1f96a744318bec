import type { Config } from '../config/schema.ts'
import { type DeploymentSpec, resourcesSpec } from '../domain/spec.ts'
import { hourlyMicroUsd } from '../payments/pricing.ts'
import { paramsJsonSchemaOf } from './params.ts'
import { type SizeDef, type TemplateFile, templateServicesOf } from './template-file.ts'

// What the catalog shows of a template: its sizes with their resources and prices (integer
// micro-USD, as strings), and in detail its parameters (JSON Schema), outputs and credentials.

const HOURS_PER_MONTH = 730n

/** What a deployment of this size holds, as far as its price goes: each service gets the size. */
function pricedSpec(t: TemplateFile, size: SizeDef): DeploymentSpec {
  const workloads = templateServicesOf(t).map((service) => ({
    name: service.name ?? t.id,
    image: service.image,
    replicas: service.replicas,
    // As a deployment made from it gets them (its container's own disk at the default size).
    resources: resourcesSpec.parse({ cpus: size.cpus, memoryMb: size.memoryMb }),
    volumes: (service.volumes ?? [])
      .filter((v) => v.storage && size.storageMb)
      .map((v) => ({ name: v.name, mountPath: v.mountPath, sizeMb: size.storageMb! })),
  }))
  return t.services ? { name: t.id, services: workloads } : { ...workloads[0]!, name: t.id }
}

export function templateSummary(t: TemplateFile, pricing: Config['pricing']) {
  return {
    id: t.id,
    name: t.name,
    description: t.description,
    ...(t.service
      ? { image: t.service.image }
      : {
          services: t.services!.map((s) => ({ name: s.name, image: s.image, replicas: s.replicas })),
        }),
    sizes: Object.entries(t.sizes).map(([name, size]) => {
      const hourly = hourlyMicroUsd(pricedSpec(t, size), pricing)
      return {
        name,
        ...(size.description ? { description: size.description } : {}),
        cpus: size.cpus,
        memoryMb: size.memoryMb,
        ...(size.storageMb ? { storageMb: size.storageMb } : {}),
        price: { hourMicroUsd: hourly.toString(), monthMicroUsd: (hourly * HOURS_PER_MONTH).toString() },
      }
    }),
  }
}

export function templateDetail(t: TemplateFile, pricing: Config['pricing']) {
  return {
    ...templateSummary(t, pricing),
    params: paramsJsonSchemaOf(t),
    outputs: Object.keys(t.outputs),
    credentials: Object.keys(t.secrets).map((name) => ({
      name,
      ...(t.secrets[name]?.description ? { description: t.secrets[name].description } : {}),
    })),
  }
}
