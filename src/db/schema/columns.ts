import { sql } from 'drizzle-orm'
import { type AnyPgColumn, check, timestamp } from 'drizzle-orm/pg-core'

// Column helpers every table uses.

/** A time: always with its time zone, read as a Date. */
export const at = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' })

/** A CHECK that keeps a text column to the domain's list, so no writer can store another value. */
export const oneOf = (name: string, column: AnyPgColumn, values: readonly string[]) =>
  check(
    name,
    sql`${column} in (${sql.join(
      values.map((v) => sql.raw(`'${v}'`)),
      sql`, `,
    )})`,
  )
