/**
 * Jittered exponential backoff: base·2^attempt capped at `maxMs`, then "full jitter" between half
 * and all of it, so that many deployments failing together do not retry in lock-step.
 */
export function backoffDelayMs(
  attempt: number,
  options: { baseMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  const exponential = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt))
  return Math.round(exponential / 2 + random() * (exponential / 2))
}
