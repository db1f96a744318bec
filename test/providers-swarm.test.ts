import { after } from 'node:test'
import { providerContract } from './contracts/provider-contract.ts'
import { berthOnSwarmTests } from './swarm/berth-on-swarm.ts'
import { swarmHardeningTests } from './swarm/hardening.ts'
import { swarmLifecycleTests } from './swarm/lifecycle.ts'
import { newSwarmProvider, SMALL, swarmWorld, tearDownSwarmWorld } from './swarm/setup.ts'

// The provider contract and Swarm-specific guarantees, against a real one-node swarm (the local
// engine as manager) and the test image served by a real registry on loopback.

after(() => tearDownSwarmWorld())

providerContract(
  'swarm',
  async () => ({
    provider: await newSwarmProvider(),
    image: (await swarmWorld()).image,
    specDefaults: { resources: SMALL },
    cleanup: async () => {},
  }),
  { services: false },
)

swarmHardeningTests()
swarmLifecycleTests()
berthOnSwarmTests()
