import { abortableDelay } from '../domain/delay.ts'
import { instanceNameOf, workloadsOf } from '../domain/services.ts'
import type { DeploymentSpec } from '../domain/spec.ts'
import { type Provider, ProviderError } from '../providers/provider.ts'
import { probeInstances } from './probe.ts'

// Waiting, during an apply, for a service that others depend on: every one of its replicas
// running and, when it has a check, passing it once (the provider's own word, or the control
// plane's probe for a provider that cannot judge health). A replica that exits meanwhile fails
// the deploy at once; one that is not ready by the deadline fails it then, as a start that never
// became healthy would. The services that depend on it are not started either way.

const POLL_MS = 250

export async function awaitServiceReady(options: {
  provider: Pick<Provider, 'observe'>
  deploymentId: string
  spec: DeploymentSpec
  service: string
  signal: AbortSignal
  timeoutMs: number
}): Promise<void> {
  const { provider, deploymentId, spec, service, signal, timeoutMs } = options
  const workload = workloadsOf(spec).find((w) => w.service === service)
  if (!workload) throw new ProviderError('permanent', `the deployment has no service named ${service}`)
  const first = workload.firstIndex
  const count = workload.spec.replicas
  const check = workload.spec.healthCheck
  const deadline = Date.now() + timeoutMs
  let last = 'not running yet'
  for (;;) {
    signal.throwIfAborted()
    const observed = await provider.observe(deploymentId)
    const instances = (observed?.instances ?? []).filter(
      (i) => i.replica >= first && i.replica < first + count,
    )
    const exited = instances.find((i) => i.state === 'exited')
    if (exited) {
      throw new ProviderError(
        'permanent',
        `${instanceNameOf(spec, exited.replica)} exited (code ${exited.exitCode ?? '?'}) before it was ready; the services that depend on it were not started`,
        { eventType: 'dependency_failed' },
      )
    }
    if (observed && instances.length === count && instances.every((i) => i.state === 'running')) {
      const unhealthy = instances.find((i) => i.health === 'unhealthy')
      if (unhealthy) last = `${instanceNameOf(spec, unhealthy.replica)} reports unhealthy`
      else if (!check || instances.every((i) => i.health === 'healthy')) return
      else {
        const failed = await probeInstances({ ...observed, instances }, () => check)
        if (!failed) return
        last = `${instanceNameOf(spec, failed.replica)}: ${failed.detail}`
      }
    }
    if (Date.now() >= deadline) {
      throw new ProviderError(
        'permanent',
        `service ${service} was not ready within ${Math.round(timeoutMs / 1000)}s (${last}); the services that depend on it were not started`,
        { eventType: 'dependency_not_ready' },
      )
    }
    await abortableDelay(POLL_MS, signal)
  }
}
