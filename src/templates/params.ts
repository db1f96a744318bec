import { z } from 'zod'
import type { ParamDef, TemplateFile } from './template-file.ts'

// A template's parameters as a zod schema: what validates a request's `params`, and (as JSON
// Schema) what `GET /v1/templates/{id}` shows.

function schemaOf(def: ParamDef): z.ZodType {
  if (def.type === 'string') {
    const s = z
      .string()
      .max(1024)
      .regex(new RegExp(`^(?:${def.pattern})$`), `must match ${def.pattern}`)
    const described = def.description ? s.describe(def.description) : s
    return def.default === undefined ? described : described.default(def.default)
  }
  if (def.type === 'integer') {
    const n = z.int().min(def.minimum).max(def.maximum)
    const described = def.description ? n.describe(def.description) : n
    return def.default === undefined ? described : described.default(def.default)
  }
  const b = def.description ? z.boolean().describe(def.description) : z.boolean()
  return def.default === undefined ? b : b.default(def.default)
}

export function paramsSchemaOf(template: Pick<TemplateFile, 'params'>) {
  return z.strictObject(
    Object.fromEntries(Object.entries(template.params).map(([name, def]) => [name, schemaOf(def)])),
  )
}

export type ParamValues = Record<string, string | number | boolean>

/** The parameters as JSON Schema (what a request may send). */
export function paramsJsonSchemaOf(template: Pick<TemplateFile, 'params'>): Record<string, unknown> {
  return z.toJSONSchema(paramsSchemaOf(template), { io: 'input' }) as Record<string, unknown>
}
