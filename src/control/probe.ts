import { request } from 'node:http'
import { connect } from 'node:net'
import type { HealthCheckSpec } from '../domain/spec.ts'
import type { Observed } from '../providers/provider.ts'

// The control plane's own health checks, for providers that cannot judge health themselves, run
// against an instance's published address: HTTP (a GET whose answer is 2xx or 3xx) or TCP (a
// connection that is accepted and not dropped at once). Each is bounded by its timeoutSeconds.

export interface ProbeAddress {
  host: string
  port: number
}

export interface ProbeResult {
  ok: boolean
  /** Why it failed (or what it saw), for the event a failure leads to. */
  detail: string
}

/**
 * How long an accepted TCP connection must stay open to count. Docker's userland proxy accepts
 * on the published port even when nothing listens inside the container, and then closes the
 * connection at once; a real listener keeps it open.
 */
const TCP_SETTLE_MS = 150

export async function probe(
  check: Pick<HealthCheckSpec, 'type' | 'path' | 'timeoutSeconds'>,
  address: ProbeAddress,
): Promise<ProbeResult> {
  const timeoutMs = check.timeoutSeconds * 1000
  return check.type === 'http'
    ? probeHttp(address, check.path ?? '/', timeoutMs)
    : probeTcp(address, Math.min(TCP_SETTLE_MS, timeoutMs / 2), timeoutMs)
}

function probeHttp(address: ProbeAddress, path: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const req = request({
      host: address.host,
      port: address.port,
      path,
      method: 'GET',
      // A fresh connection per probe: a pooled one could hide a listener that went away.
      agent: false,
      headers: { 'user-agent': 'berth-health-check', connection: 'close' },
      signal: AbortSignal.timeout(timeoutMs),
    })
    req.once('response', (res) => {
      const status = res.statusCode ?? 0
      res.resume()
      req.destroy()
      const ok = status >= 200 && status < 400
      resolve({ ok, detail: `GET ${path} answered ${status}` })
    })
    req.once('error', (error) => {
      const timedOut = error.name === 'AbortError' || error.name === 'TimeoutError'
      resolve({
        ok: false,
        detail: timedOut ? `GET ${path}: no answer within ${timeoutMs} ms` : `GET ${path}: ${error.message}`,
      })
    })
    req.end()
  })
}

function probeTcp(address: ProbeAddress, settleMs: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host: address.host, port: address.port })
    let settled = false
    const finish = (result: ProbeResult) => {
      if (settled) return
      settled = true
      clearTimeout(deadline)
      clearTimeout(settle)
      socket.destroy()
      resolve(result)
    }
    let settle: NodeJS.Timeout | undefined
    const deadline = setTimeout(
      () => finish({ ok: false, detail: `tcp ${address.port}: no connection within ${timeoutMs} ms` }),
      timeoutMs,
    )
    socket.once('connect', () => {
      settle = setTimeout(() => finish({ ok: true, detail: `tcp ${address.port}: connected` }), settleMs)
    })
    socket.once('end', () => finish({ ok: false, detail: `tcp ${address.port}: connection closed at once` }))
    socket.once('close', () =>
      finish({ ok: false, detail: `tcp ${address.port}: connection closed at once` }),
    )
    socket.once('error', (error) => finish({ ok: false, detail: `tcp ${address.port}: ${error.message}` }))
  })
}

/**
 * Probes every running instance whose provider cannot judge its health itself. Returns the first
 * failure, or null when every probe passed (or none was needed).
 */
export async function probeInstances(
  observed: Observed,
  checkOf: (index: number) => HealthCheckSpec | undefined,
): Promise<{ replica: number; detail: string } | null> {
  const pending = observed.instances.filter((i) => i.state === 'running' && i.health === 'unknown')
  const results = await Promise.all(
    pending.map(async (instance) => {
      const check = checkOf(instance.replica)
      if (!check) return { replica: instance.replica, ok: true, detail: 'not checked' }
      const address = instance.addresses?.find((a) => a.containerPort === check.port && a.protocol === 'tcp')
      if (!address) {
        return { replica: instance.replica, ok: false, detail: `port ${check.port} is not published` }
      }
      return { replica: instance.replica, ...(await probe(check, address)) }
    }),
  )
  const failed = results.find((r) => !r.ok)
  return failed ? { replica: failed.replica, detail: failed.detail } : null
}
