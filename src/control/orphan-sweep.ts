import type { Logger } from 'pino'
import type { ProviderRegistry } from '../providers/provider.ts'
import type { DeploymentStore } from './deployment-store.ts'

/**
 * Removes what providers run for berth with no live deployment behind it (its row is gone or
 * deleted), e.g. an instance created by a step whose deployment was deleted meanwhile, then what
 * the providers keep beside instances that nothing uses any more (docker: owner networks). Only
 * berth-labelled resources are ever listed, so nothing else is touched.
 */
export async function sweepOrphans(
  providers: ProviderRegistry,
  store: DeploymentStore,
  logger: Logger,
): Promise<number> {
  let removed = 0
  for (const provider of providers.all()) {
    let instances: Awaited<ReturnType<typeof provider.list>>
    try {
      instances = await provider.list()
    } catch (error) {
      logger.warn({ provider: provider.name, err: error }, 'orphan sweep could not list instances')
      continue
    }
    const ids = [...new Set(instances.map((i) => i.deploymentId))].filter((id) => uuidPattern.test(id))
    const live = await store.liveIds(ids)
    for (const id of ids.filter((candidate) => !live.has(candidate))) {
      await provider.remove(id)
      removed++
      logger.info({ provider: provider.name, deploymentId: id }, 'removed orphaned instances')
    }
    // After the instances: removing them may have left something unused.
    const unused = await provider.sweepUnused?.().catch((error: unknown) => {
      logger.warn({ provider: provider.name, err: error }, 'orphan sweep could not remove unused resources')
      return 0
    })
    if (unused) logger.info({ provider: provider.name, removed: unused }, 'removed unused provider resources')
  }
  return removed
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
