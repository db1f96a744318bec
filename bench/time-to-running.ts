import { api, type RunningBerth } from '../test/helpers/server.ts'

/**
 * berth's side of a deploy benchmark: POST the deployment, then follow its events (SSE) until it
 * is running. Returns its id and the milliseconds from the POST to `running`.
 */
export async function timeToRunning(
  server: RunningBerth,
  token: string,
  body: Record<string, unknown>,
): Promise<{ id: string; ms: number }> {
  const started = performance.now()
  const accepted = await api(server.url, token).post<{ id: string }>('/v1/deployments', body)
  if (accepted.status !== 202) throw new Error(`create: ${accepted.status} ${JSON.stringify(accepted.body)}`)
  const { id } = accepted.body
  const response = await fetch(`${server.url}/v1/deployments/${id}/events?follow=1`, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
  })
  const decoder = new TextDecoder()
  let text = ''
  for await (const chunk of response.body!) {
    text += decoder.decode(chunk as Uint8Array, { stream: true })
    if (text.includes('"status":"running"')) break
    if (text.includes('"status":"failed"')) throw new Error(`${String(body.name)} failed: ${text}`)
  }
  const ms = performance.now() - started
  await response.body?.cancel().catch(() => {})
  return { id, ms }
}
