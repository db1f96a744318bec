import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { workloadsOf } from '../../src/domain/services.ts'
import type { Provider, RegistryCredential } from '../../src/providers/provider.ts'
import { createSimulatedProvider } from '../../src/providers/simulated/simulated-provider.ts'

/**
 * The real simulated provider (no delays), noting the env each apply was given (every service's
 * together) and each command run in a deployment: what tests of secrets check reached the
 * provider opened.
 */
export function recordingSimulatedProvider() {
  const simulated = createSimulatedProvider({
    stateDir: mkdtempSync(join(tmpdir(), 'berth-sim-')),
    pullMs: 0,
    createMs: 0,
    startMs: 0,
  })
  const applied: Array<Record<string, string>> = []
  const commands: string[][] = []
  /** The registry credentials each apply was given, by deployment. */
  const registries = new Map<string, RegistryCredential[]>()
  const provider: Provider = {
    ...simulated,
    apply: (target, ctx) => {
      applied.push(Object.assign({}, ...workloadsOf(target.spec).map((w) => w.spec.env)))
      registries.set(target.id, target.registryCredentials ?? [])
      return simulated.apply(target, ctx)
    },
    exec: (deploymentId, command) => {
      commands.push(command)
      return simulated.exec!(deploymentId, command)
    },
  }
  return { provider, applied, commands, registries }
}
