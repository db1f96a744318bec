import { z } from 'zod'

// Coercions shared by the config schemas: env values arrive as strings.

export const bool = z.preprocess((value) => {
  if (typeof value !== 'string') return value
  if (['true', '1', 'yes', 'on'].includes(value.toLowerCase())) return true
  if (['false', '0', 'no', 'off', ''].includes(value.toLowerCase())) return false
  return value
}, z.boolean())

export const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max)
