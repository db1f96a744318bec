import type { DeploymentSpec, SingleImageSpec } from '../../src/domain/spec.ts'

/** The spec as the single-image spec a test made it (a failed assertion otherwise). */
export function singleImage(spec: DeploymentSpec): SingleImageSpec {
  if (spec.services) throw new Error('expected a single-image spec, found services')
  return spec
}
