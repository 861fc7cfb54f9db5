/**
 * When to stop an idle instance: idle_timeout counts from the end of the last request; a
 * request in flight (or waiting for a start) keeps it alive. Pure: time is an input.
 */
export type IdleAction = { action: 'none' } | { action: 'stop' } | { action: 'check-in'; ms: number }

export function idleAction(now: number, lastUsed: number, idleTimeoutMinutes: number, busy: number, running: boolean): IdleAction {
  if (!running || idleTimeoutMinutes <= 0 || busy > 0) return { action: 'none' }
  const deadline = lastUsed + idleTimeoutMinutes * 60_000
  if (now >= deadline) return { action: 'stop' }
  return { action: 'check-in', ms: deadline - now }
}
