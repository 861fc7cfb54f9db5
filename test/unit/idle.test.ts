import { describe, expect, test } from 'bun:test'
import { idleAction, MAX_TIMER_MS } from '../../src/scheduler/idle'

describe('idle stop', () => {
  test('stops after idle_timeout minutes from the last request; not while busy or stopped', () => {
    expect(idleAction(60_000, 0, 1, 0, true)).toEqual({ action: 'stop' })
    expect(idleAction(30_000, 0, 1, 0, true)).toEqual({ action: 'check-in', ms: 30_000 })
    expect(idleAction(120_000, 0, 1, 1, true)).toEqual({ action: 'none' })
    expect(idleAction(120_000, 0, 1, 0, false)).toEqual({ action: 'none' })
    expect(idleAction(120_000, 0, 0, 0, true)).toEqual({ action: 'none' })
  })

  test('a deadline beyond what setTimeout can hold is checked in on at its limit (a longer timer would fire at once, in a loop)', () => {
    expect(idleAction(0, 0, 1e9, 0, true)).toEqual({ action: 'check-in', ms: MAX_TIMER_MS })
    expect(idleAction(0, 0, 1e308, 0, true)).toEqual({ action: 'check-in', ms: MAX_TIMER_MS })
  })
})
