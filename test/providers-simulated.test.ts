import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSimulatedProvider } from '../src/providers/simulated/simulated-provider.ts'
import { providerContract } from './contracts/provider-contract.ts'

providerContract(
  'simulated',
  async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'berth-sim-contract-'))
    return {
      provider: createSimulatedProvider({ stateDir, pullMs: 0, createMs: 0, startMs: 0 }),
      image: 'example/app:1',
      cleanup: async () => rmSync(stateDir, { recursive: true, force: true }),
    }
  },
  { services: true },
)
