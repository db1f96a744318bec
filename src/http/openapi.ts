import { OpenAPIHono } from '@hono/zod-openapi'
import { describeIssues, invalidInput, summarizeIssues } from '../domain/errors.ts'
import type { AppEnv } from './context.ts'

/**
 * Every router is made here so that a request failing its zod schema always becomes the same
 * `invalid_input` error naming the fields, whichever route it hit.
 */
export function createRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const issues = describeIssues(result.error.issues)
        throw invalidInput(`invalid request: ${summarizeIssues(issues)}`, issues)
      }
    },
  })
}
