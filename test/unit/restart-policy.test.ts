import { describe, expect, test } from 'bun:test'
import { decideRestart, HEALTHY_RESET_MS, MAX_BACKOFF_MS } from '../../src/scheduler/restart-policy'

const policy = { auto_restart: true, max_restarts: 3, restart_delay: 2 }

describe('restart policy', () => {
  test('restarts after restart_delay, doubling with each consecutive restart', () => {
    expect(decideRestart(policy, 0, 1000)).toEqual({ action: 'restart', delayMs: 2000, attempt: 1 })
    expect(decideRestart(policy, 1, 0)).toEqual({ action: 'restart', delayMs: 4000, attempt: 2 })
    expect(decideRestart(policy, 2, 0)).toEqual({ action: 'restart', delayMs: 8000, attempt: 3 })
  })
  test('the backoff is capped at five minutes (or restart_delay when that is longer)', () => {
    expect(decideRestart({ ...policy, max_restarts: -1 }, 30, 0)).toEqual({ action: 'restart', delayMs: MAX_BACKOFF_MS, attempt: 31 })
    expect(decideRestart({ ...policy, max_restarts: -1, restart_delay: 600 }, 5, 0)).toEqual({ action: 'restart', delayMs: 600_000, attempt: 6 })
    expect(decideRestart({ ...policy, restart_delay: 0 }, 2, 0)).toEqual({ action: 'restart', delayMs: 0, attempt: 3 })
  })
  test('gives up at max_restarts', () => {
    const d = decideRestart(policy, 3, 0)
    expect(d.action).toBe('fail')
    expect(d.action === 'fail' && d.reason).toContain('gave up after 3 restarts')
  })
  test('a backend that ran healthy for a while gets its count back', () => {
    expect(decideRestart(policy, 3, HEALTHY_RESET_MS)).toEqual({ action: 'restart', delayMs: 2000, attempt: 1 })
    expect(decideRestart(policy, 3, HEALTHY_RESET_MS - 1).action).toBe('fail')
  })
  test('auto_restart off never restarts', () => {
    expect(decideRestart({ ...policy, auto_restart: false }, 0, 0).action).toBe('fail')
  })
  test('max_restarts -1 has no limit; 0 never restarts', () => {
    expect(decideRestart({ ...policy, max_restarts: -1 }, 1000, 0).action).toBe('restart')
    expect(decideRestart({ ...policy, max_restarts: 0 }, 0, 0).action).toBe('fail')
  })
})
