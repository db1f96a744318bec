import fc from 'fast-check'

// Requests generated from berth's own OpenAPI document: for each operation, path parameters,
// query strings, headers and JSON bodies that follow the schema, and ones that break it in the
// ways a hostile client would (wrong types, out-of-range numbers, NUL characters, unknown keys,
// missing fields, text that is not JSON).

// biome-ignore lint/suspicious/noExplicitAny: a JSON Schema is walked field by field
type Schema = any

export interface Operation {
  method: string
  path: string
  // biome-ignore lint/suspicious/noExplicitAny: OpenAPI parameter objects
  parameters: any[]
  bodySchema: Schema | undefined
}

export interface FuzzRequest {
  method: string
  url: string
  headers: Record<string, string>
  body: string | undefined
}

export function operationsOf(doc: Schema): Operation[] {
  const operations: Operation[] = []
  for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, Schema>>)) {
    for (const [method, operation] of Object.entries(methods)) {
      operations.push({
        method: method.toUpperCase(),
        path,
        parameters: operation.parameters ?? [],
        bodySchema: operation.requestBody?.content?.['application/json']?.schema,
      })
    }
  }
  return operations
}

const hostileStrings = fc.constantFrom(
  '',
  ' ',
  'a\u0000b',
  '\u0000',
  '../../etc/passwd',
  '%00',
  "' or 1=1 --",
  '<script>alert(1)</script>',
  '\ud800',
  '𝔟𝔢𝔯𝔱𝔥',
  'x'.repeat(5000),
  '-1',
  '1e309',
  'NaN',
  '0x',
  'null',
  '{}',
)

/** Any JSON value at all, hostile strings included. */
const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  hostileStrings,
  fc.constantFrom(null, true, -1, 0, 2 ** 53, -(2 ** 63), 1.5, [], {}),
)

function resolveRef(schema: Schema, doc: Schema): Schema {
  let current = schema
  while (current?.$ref) {
    const name = String(current.$ref).replace('#/components/schemas/', '')
    current = doc.components.schemas[name]
  }
  return current
}

/** Values that follow `schema` (as far as generation can: patterns are matched, limits kept). */
export function validValue(schema: Schema, doc: Schema, depth = 0): fc.Arbitrary<unknown> {
  const s = resolveRef(schema, doc)
  if (!s || depth > 5) return fc.constant(null)
  if (s.enum) return fc.constantFrom(...s.enum)
  if (s.anyOf) return fc.oneof(...s.anyOf.map((x: Schema) => validValue(x, doc, depth + 1)))
  if (s.oneOf) return fc.oneof(...s.oneOf.map((x: Schema) => validValue(x, doc, depth + 1)))
  if (s.allOf)
    return validValue(Object.assign({}, ...s.allOf.map((x: Schema) => resolveRef(x, doc))), doc, depth + 1)
  const types: string[] = Array.isArray(s.type) ? s.type : [s.type ?? 'object']
  return fc.oneof(...types.map((type) => valueOfType(type, s, doc, depth)))
}

function valueOfType(type: string, s: Schema, doc: Schema, depth: number): fc.Arbitrary<unknown> {
  switch (type) {
    case 'null':
      return fc.constant(null)
    case 'boolean':
      return fc.boolean()
    case 'integer':
      return fc.integer({ min: lowest(s, 1), max: Math.min(highest(s, 1), 2 ** 31) })
    case 'number':
      return fc.double({ min: lowest(s, 0.001), max: highest(s, 0.001), noNaN: true })
    case 'string':
      return stringFor(s)
    case 'array':
      return fc.array(validValue(s.items ?? {}, doc, depth + 1), {
        minLength: s.minItems ?? 0,
        maxLength: Math.min(s.maxItems ?? 4, 4),
      })
    default:
      return objectFor(s, doc, depth)
  }
}

const lowest = (s: Schema, step: number): number =>
  s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + step : (s.minimum ?? -1000)
const highest = (s: Schema, step: number): number =>
  s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - step : (s.maximum ?? 100_000)

function stringFor(s: Schema): fc.Arbitrary<string> {
  if (s.format === 'uuid') return fc.uuid()
  if (s.format === 'date-time') return fc.date({ noInvalidDate: true }).map((d) => d.toISOString())
  if (s.pattern) {
    const max = s.maxLength ?? 200
    return fc
      .stringMatching(new RegExp(s.pattern))
      .filter((v) => v.length >= (s.minLength ?? 0) && v.length <= max)
  }
  return fc.string({ minLength: s.minLength ?? 0, maxLength: Math.min(s.maxLength ?? 40, 40) })
}

function objectFor(s: Schema, doc: Schema, depth: number): fc.Arbitrary<unknown> {
  const properties: Record<string, Schema> = s.properties ?? {}
  const required = new Set<string>(s.required ?? [])
  const arbitraries = Object.fromEntries(
    Object.entries(properties).map(([key, value]) => [key, validValue(value, doc, depth + 1)]),
  )
  const requiredKeys = Object.keys(properties).filter((k) => required.has(k))
  // Optional fields have rules between them (a health check's port among the ports, limits that
  // multiply): requests with only the required ones, or one optional one besides, get through to
  // the handlers more often.
  const only = (keys: string[]) => fc.record(Object.fromEntries(keys.map((key) => [key, arbitraries[key]!])))
  const optional = Object.keys(properties).filter((k) => !required.has(k))
  const record = fc.oneof(
    only(requiredKeys),
    optional.length
      ? fc.constantFrom(...optional).chain((key) => only([...requiredKeys, key]))
      : only(requiredKeys),
    fc.record(arbitraries, { requiredKeys }),
  )
  if (s.additionalProperties && typeof s.additionalProperties === 'object' && !s.properties) {
    return fc.dictionary(
      fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,10}$/),
      validValue(s.additionalProperties, doc, depth + 1),
      { maxKeys: 3 },
    )
  }
  return record
}

/** A valid value broken in one of the ways a hostile client would break it. */
export function brokenValue(schema: Schema, doc: Schema): fc.Arbitrary<unknown> {
  const valid = validValue(schema, doc)
  return fc.oneof(
    anyJson,
    valid.chain((value) => {
      if (!value || typeof value !== 'object' || Array.isArray(value)) return anyJson
      const keys = Object.keys(value)
      return fc.oneof(
        // A field replaced by anything.
        keys.length
          ? fc.tuple(fc.constantFrom(...keys), anyJson).map(([key, v]) => ({ ...value, [key]: v }))
          : anyJson,
        // A field dropped.
        keys.length
          ? fc
              .constantFrom(...keys)
              .map((key) => Object.fromEntries(Object.entries(value).filter(([k]) => k !== key)))
          : anyJson,
        // A key the schema does not know.
        anyJson.map((v) => ({ ...value, unexpected: v })),
      )
    }),
    // A NUL character in one of the strings (the others left valid, so it gets past validation).
    valid.chain((value) => {
      const paths = stringPaths(value)
      return paths.length ? fc.constantFrom(...paths).map((path) => withNulAt(value, path)) : anyJson
    }),
  )
}

type Path = Array<string | number>

function stringPaths(value: unknown, at: Path = []): Path[] {
  if (typeof value === 'string') return [at]
  if (Array.isArray(value)) return value.flatMap((v, i) => stringPaths(v, [...at, i]))
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => stringPaths(v, [...at, k]))
  }
  return []
}

function withNulAt(value: unknown, path: Path): unknown {
  if (path.length === 0) return `${value}\u0000`
  const [head, ...rest] = path
  if (Array.isArray(value)) return value.map((v, i) => (i === head ? withNulAt(v, rest) : v))
  const record = value as Record<string, unknown>
  return { ...record, [head!]: withNulAt(record[head!], rest) }
}

/** Requests for one operation; `pathValue` gives the candidates for a path parameter. */
export function requestsFor(
  operation: Operation,
  doc: Schema,
  pathValue: (name: string, schema: Schema) => fc.Arbitrary<string>,
): fc.Arbitrary<FuzzRequest> {
  const pathParams = operation.parameters.filter((p) => p.in === 'path')
  const queryParams = operation.parameters.filter((p) => p.in === 'query')
  const headerParams = operation.parameters.filter((p) => p.in === 'header')
  const scalar = (p: Schema) =>
    fc.oneof(
      { weight: 3, arbitrary: validValue(p.schema, doc).map((v) => String(v)) },
      { weight: 1, arbitrary: hostileStrings },
    )
  const body: fc.Arbitrary<string | undefined> = operation.bodySchema
    ? fc.oneof(
        { weight: 3, arbitrary: validValue(operation.bodySchema, doc).map((v) => JSON.stringify(v)) },
        {
          weight: 2,
          arbitrary: brokenValue(operation.bodySchema, doc).map((v) => JSON.stringify(v) ?? 'null'),
        },
        { weight: 1, arbitrary: fc.constantFrom('{', '', 'not json', '[1,', '{"a":1}{', '\u0000') },
      )
    : fc.option(
        anyJson.map((v) => JSON.stringify(v) ?? 'null'),
        { nil: undefined, freq: 4 },
      )
  return fc
    .record({
      path: fc.tuple(...pathParams.map((p) => pathValue(p.name, p.schema))),
      query: fc.tuple(...queryParams.map((p) => fc.option(scalar(p), { nil: undefined }))),
      headers: fc.tuple(...headerParams.map((p) => fc.option(scalar(p), { nil: undefined }))),
      body,
    })
    .map(({ path, query, headers, body }) => {
      let url = operation.path
      pathParams.forEach((p, i) => {
        url = url.replace(`{${p.name}}`, encodeURIComponent(path[i]!))
      })
      const search = new URLSearchParams()
      queryParams.forEach((p, i) => {
        if (query[i] !== undefined) search.set(p.name, query[i]!)
      })
      const headerValues: Record<string, string> = {}
      headerParams.forEach((p, i) => {
        // Header values are printable ASCII here; the client would refuse to send anything else.
        if (headers[i] !== undefined && /^[ -~]*$/.test(headers[i]!)) {
          headerValues[p.name] = headers[i]!
        }
      })
      return {
        method: operation.method,
        url: search.size ? `${url}?${search}` : url,
        headers: headerValues,
        body,
      }
    })
}
