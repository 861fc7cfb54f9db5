/**
 * When to stop an idle instance: idle_timeout counts from the end of the last request; a
 * request in flight (or waiting for a start) keeps it alive. Pure: time is an input.
 */
export type IdleAction = { action: 'none' } | { action: 'stop' } | { action: 'check-in'; ms: number }

/** The longest timer setTimeout keeps (about 24.8 days); a longer one fires at once, so a far deadline is checked in on again. */
export const MAX_TIMER_MS = 2 ** 31 - 1

export function idleAction(now: number, lastUsed: number, idleTimeoutMinutes: number, busy: number, running: boolean): IdleAction {
  if (!running || idleTimeoutMinutes <= 0 || busy > 0) return { action: 'none' }
  const deadline = lastUsed + idleTimeoutMinutes * 60_000
  if (now >= deadline) return { action: 'stop' }
  return { action: 'check-in', ms: Math.min(deadline - now, MAX_TIMER_MS) }
}
