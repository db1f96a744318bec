import type { Config } from '../config/schema.ts'
import { hourlyMicroUsd } from '../payments/pricing.ts'
import { paramsJsonSchemaOf } from './params.ts'
import type { TemplateFile } from './template-file.ts'

// What the catalog shows of a template: its sizes with their resources and prices (integer
// micro-USD, as strings), and in detail its parameters (JSON Schema), outputs and credentials.

const HOURS_PER_MONTH = 730n

export function templateSummary(t: TemplateFile, pricing: Config['pricing']) {
  return {
    id: t.id,
    name: t.name,
    description: t.description,
    image: t.service.image,
    sizes: Object.entries(t.sizes).map(([name, size]) => {
      const hourly = hourlyMicroUsd(
        {
          name: t.id,
          image: t.service.image,
          replicas: 1,
          resources: { cpus: size.cpus, memoryMb: size.memoryMb, gpus: 0, diskMb: 0 },
          volumes: (t.service.volumes ?? [])
            .filter((v) => v.storage && size.storageMb)
            .map((v) => ({ name: v.name, mountPath: v.mountPath, sizeMb: size.storageMb! })),
        },
        pricing,
      )
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
