/**
 * What to do when a backend exits without being asked to: a pure decision from the instance's
 * policy, its restart count and how long it ran. No clock, no I/O.
 */
export interface RestartPolicy {
  auto_restart: boolean
  /** -1: no limit. */
  max_restarts: number
  /** Seconds. */
  restart_delay: number
}

export type RestartDecision = { action: 'restart'; delayMs: number; attempt: number } | { action: 'fail'; reason: string }

/** A backend that stayed ready this long has recovered: its restart count starts over. */
export const HEALTHY_RESET_MS = 60_000

/** Backoff: the delay doubles with each consecutive restart, up to this (or restart_delay, if larger). */
export const MAX_BACKOFF_MS = 300_000

export function decideRestart(
  policy: RestartPolicy,
  restartsSoFar: number,
  /** How long it had been ready before exiting; 0 if it never became ready. */
  healthyForMs: number,
): RestartDecision {
  if (!policy.auto_restart) return { action: 'fail', reason: 'exited unexpectedly; auto_restart is off' }
  const count = healthyForMs >= HEALTHY_RESET_MS ? 0 : restartsSoFar
  if (policy.max_restarts >= 0 && count >= policy.max_restarts) {
    return { action: 'fail', reason: `exited unexpectedly; gave up after ${count} restart${count === 1 ? '' : 's'} (max_restarts)` }
  }
  const base = policy.restart_delay * 1000
  const delayMs = Math.round(Math.min(base * 2 ** Math.min(count, 20), Math.max(base, MAX_BACKOFF_MS)))
  return { action: 'restart', delayMs, attempt: count + 1 }
}
