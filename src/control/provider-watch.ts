import type { Logger } from 'pino'
import type { EventBus } from '../events/bus.ts'
import type { ProviderRegistry } from '../providers/provider.ts'
import type { DeploymentStore } from './deployment-store.ts'

// Watchers only make rows due; they never act: the reconciler alone acts, under its lease, so an
// event and a poll can never both act on one deployment. A provider's change stream (the
// Docker events) marks the deployment due now and wakes the reconciler, which then observes and
// takes the step as it would on its next poll, only sooner.

export function startProviderWatches(deps: {
  providers: ProviderRegistry
  store: DeploymentStore
  bus: EventBus
  logger: Logger
}): { stop(): Promise<void> } {
  const abort = new AbortController()
  const running: Array<Promise<void>> = []
  for (const provider of deps.providers.all()) {
    if (!provider.watch) continue
    const log = deps.logger.child({ provider: provider.name })
    let connected = true
    const due = (work: Promise<number>) =>
      void work.then(
        (n) => {
          if (n > 0) deps.bus.wake()
        },
        (error: unknown) => log.warn({ err: error }, 'could not mark deployments due'),
      )
    running.push(
      provider
        .watch(
          {
            changed: (deploymentId, reason) => {
              log.debug({ deploymentId, reason }, 'provider reported a change')
              due(deps.store.markDue([deploymentId]))
            },
            resynced: () => {
              connected = true
              log.info('provider watch reconnected; looking at every deployment')
              due(deps.store.markProviderDue(provider.name))
            },
            disconnected: (error) => {
              // Once per gap, not once per reconnect attempt.
              if (connected) log.warn({ err: error }, 'provider watch disconnected; reconnecting')
              connected = false
            },
          },
          abort.signal,
        )
        .catch((error: unknown) => log.error({ err: error }, 'provider watch ended')),
    )
  }
  return {
    async stop() {
      abort.abort()
      await Promise.allSettled(running)
    },
  }
}
