// When a failed delivery is tried again: the configured delays (notifications.retryDelaysSeconds),
// each stretched or shrunk by up to a fifth at random, so the retries of many deliveries that
// failed together (a receiver's outage) do not all arrive again in the same instant.

const JITTER = 0.2

/**
 * The delay after `attemptsMade` attempts have failed, in ms; undefined when the schedule is
 * over and the delivery has failed for good.
 */
export function retryDelayMs(
  attemptsMade: number,
  delaysSeconds: readonly number[],
  random: () => number = Math.random,
): number | undefined {
  const base = delaysSeconds[attemptsMade - 1]
  if (base === undefined) return undefined
  const factor = 1 - JITTER + 2 * JITTER * random()
  return Math.round(base * 1000 * factor)
}

/** How many attempts a delivery gets in all: the first and one after each delay. */
export const attemptsAllowed = (delaysSeconds: readonly number[]): number => delaysSeconds.length + 1
