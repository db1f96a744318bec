import { createRoute, z } from '@hono/zod-openapi'
import type { Config } from '../../config/schema.ts'
import { notFound } from '../../domain/errors.ts'
import type { Catalog } from '../../templates/catalog.ts'
import { templateDetail, templateSummary } from '../../templates/template-view.ts'
import { createRouter } from '../openapi.ts'
import { errorResponses, json } from '../schemas.ts'

// The template catalog: what one-click resources there are, their sizes and prices, and what
// each asks for and gives.

const sizeSchema = z.object({
  name: z.string(),
  description: z.string().optional(),
  cpus: z.number(),
  memoryMb: z.number(),
  storageMb: z.number().optional(),
  price: z.object({ hourMicroUsd: z.string(), monthMicroUsd: z.string() }),
})
const summarySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    description: z.string(),
    /** The image of a one-service template. */
    image: z.string().optional(),
    /** The services of a multi-service template; a size's resources are each service's. */
    services: z.array(z.object({ name: z.string(), image: z.string(), replicas: z.number() })).optional(),
    sizes: z.array(sizeSchema),
  })
  .openapi('TemplateSummary')
const detailSchema = summarySchema
  .extend({
    params: z
      .record(z.string(), z.unknown())
      .openapi({ description: 'JSON Schema of the parameters a create may give' }),
    outputs: z.array(z.string()),
    credentials: z.array(z.object({ name: z.string(), description: z.string().optional() })),
  })
  .openapi('Template')

const listTemplates = createRoute({
  method: 'get',
  path: '/v1/templates',
  tags: ['templates'],
  summary: 'The template catalog',
  responses: { 200: json(z.object({ items: z.array(summarySchema) }), 'Templates'), ...errorResponses },
})

const getTemplate = createRoute({
  method: 'get',
  path: '/v1/templates/{template}',
  tags: ['templates'],
  summary: 'One template: sizes and prices, parameters, outputs, credentials',
  request: {
    params: z.object({
      template: z
        .string()
        .max(63)
        .openapi({ param: { name: 'template', in: 'path' } }),
    }),
  },
  responses: { 200: json(detailSchema, 'The template'), ...errorResponses },
})

export function templateRoutes(deps: { catalog: Catalog; pricing: Config['pricing'] }) {
  const router = createRouter()
  router.openapi(listTemplates, (c) =>
    c.json({ items: deps.catalog.list().map((t) => templateSummary(t, deps.pricing)) }, 200),
  )
  router.openapi(getTemplate, (c) => {
    const template = deps.catalog.get(c.req.valid('param').template)
    if (!template) throw notFound('template')
    return c.json(templateDetail(template, deps.pricing), 200)
  })
  return router
}
