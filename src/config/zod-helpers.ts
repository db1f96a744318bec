import { z } from 'zod'

// Coercions shared by the config schemas: env values arrive as strings.

export const bool = z.preprocess((value) => {
  if (typeof value !== 'string') return value
  if (['true', '1', 'yes', 'on'].includes(value.toLowerCase())) return true
  if (['false', '0', 'no', 'off', ''].includes(value.toLowerCase())) return false
  return value
}, z.boolean())

export const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max)

/** A list, or (from an env variable) the same comma-separated. */
export const commaList = <T extends z.ZodType>(item: T, { min = 0, max = 1000 } = {}) =>
  z.preprocess(
    (v) =>
      typeof v === 'string'
        ? v
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean)
        : v,
    z.array(item).min(min).max(max),
  )
