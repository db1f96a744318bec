import { instanceNameOf, workloadsOf } from '../domain/services.ts'
import type { DeploymentSpec } from '../domain/spec.ts'
import { type Provider, ProviderError } from '../providers/provider.ts'
import { probeInstances } from './probe.ts'

// Whether a service others depend on is ready, looked at once during an apply: every one of its
// replicas running and, when it has a check, passing it (the provider's own word, or the control
// plane's probe for a provider that cannot judge health). Not ready yet, the apply stops there and
// the reconciler looks again shortly (a step waits for no one: a worker is never held). A replica
// that exited fails the deploy at once; one still not ready at the deadline (the longest a start
// may run unbilled, from when the deploy began) fails it then.

export async function isServiceReady(options: {
  provider: Pick<Provider, 'observe'>
  deploymentId: string
  spec: DeploymentSpec
  service: string
  deadline: Date
  now: () => Date
}): Promise<boolean> {
  const { provider, deploymentId, spec, service, deadline } = options
  const workload = workloadsOf(spec).find((w) => w.service === service)
  if (!workload) throw new ProviderError('permanent', `the deployment has no service named ${service}`)
  const first = workload.firstIndex
  const count = workload.spec.replicas
  const check = workload.spec.healthCheck
  const observed = await provider.observe(deploymentId)
  const instances = (observed?.instances ?? []).filter((i) => i.replica >= first && i.replica < first + count)
  const exited = instances.find((i) => i.state === 'exited')
  if (exited) {
    throw new ProviderError(
      'permanent',
      `${instanceNameOf(spec, exited.replica)} exited (code ${exited.exitCode ?? '?'}) before it was ready; the services that depend on it were not started`,
      { eventType: 'dependency_failed' },
    )
  }
  let why = 'not running yet'
  if (observed && instances.length === count && instances.every((i) => i.state === 'running')) {
    const unhealthy = instances.find((i) => i.health === 'unhealthy')
    if (unhealthy) why = `${instanceNameOf(spec, unhealthy.replica)} reports unhealthy`
    else if (!check || instances.every((i) => i.health === 'healthy')) return true
    else {
      const failed = await probeInstances({ ...observed, instances }, () => check)
      if (!failed) return true
      why = `${instanceNameOf(spec, failed.replica)}: ${failed.detail}`
    }
  }
  if (options.now() >= deadline) {
    throw new ProviderError(
      'permanent',
      `service ${service} was not ready by ${deadline.toISOString()} (${why}); the services that depend on it were not started`,
      { eventType: 'dependency_not_ready' },
    )
  }
  return false
}
