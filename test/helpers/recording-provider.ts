import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Provider } from '../../src/providers/provider.ts'
import { createSimulatedProvider } from '../../src/providers/simulated/simulated-provider.ts'
import { singleImage } from './single-image.ts'

/**
 * The real simulated provider (no delays), noting the env each apply was given and each command
 * run in a deployment: what tests of secrets check reached the provider opened.
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
  const provider: Provider = {
    ...simulated,
    apply: (target, ctx) => {
      applied.push({ ...singleImage(target.spec).env })
      return simulated.apply(target, ctx)
    },
    exec: (deploymentId, command) => {
      commands.push(command)
      return simulated.exec!(deploymentId, command)
    },
  }
  return { provider, applied, commands }
}
