import type { api } from '../helpers/server.ts'
import { waitFor } from '../helpers/wait.ts'

// What the end-to-end tests on the real engine share: a `berth serve` whose default provider is
// that engine, and the deletes that leave it as it was found.

export interface DockerTestEngine {
  docker: import('dockerode')
  image: string
  socketPath: string
}

/** Env for `berth serve` on the test engine; no orphan sweep in the middle of a test. */
export function onDocker(socketPath: string): Record<string, string> {
  return {
    BERTH_PROVIDERS__DEFAULT: 'docker',
    BERTH_PROVIDERS__DOCKER__ENABLED: 'true',
    BERTH_PROVIDERS__DOCKER__HOST: `unix://${socketPath}`,
    BERTH_RECONCILER__SWEEP_INTERVAL_SECONDS: '86400',
  }
}

/** Deletes the deployments and waits (bounded) until they are gone, containers and all. */
export async function deleteAndWait(client: ReturnType<typeof api>, ids: readonly string[]): Promise<void> {
  for (const id of ids) await client.del(`/v1/deployments/${id}`)
  for (const id of ids) {
    await waitFor(
      'deleted',
      async () => (await client.get<{ status: string }>(`/v1/deployments/${id}`)).body.status === 'deleted',
      30_000,
    ).catch(() => {})
  }
}

/** The deployment's view once it is running; a failure ends the wait at once, naming the view. */
export function waitRunning<View extends { status: string }>(
  client: ReturnType<typeof api>,
  id: string,
  timeoutMs: number,
): Promise<View> {
  return waitFor(
    `${id} running`,
    async () => {
      const view = (await client.get<View>(`/v1/deployments/${id}`)).body
      if (view.status === 'failed') throw new Error(`failed: ${JSON.stringify(view)}`)
      return view.status === 'running' ? view : null
    },
    timeoutMs,
  )
}
