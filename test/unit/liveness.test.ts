import { describe, expect, test } from 'bun:test'
import { FAILURES_ALLOWED, judgeProbe, type ProbeState } from '../../src/supervisor/liveness'

const INTERVAL = 5000

/**
 * Plays probes on fake time: each step is a probe judged at `at` ms (ok or not), with bytes of a
 * request last seen at `progressAt`. Returns the verdicts' `dead` flags, in order.
 */
function play(steps: { at: number; ok: boolean; progressAt?: number }[]): boolean[] {
  let state: ProbeState = { failures: 0, since: 0 }
  return steps.map((s) => {
    const v = judgeProbe(state, s.ok, s.at, s.progressAt ?? 0, INTERVAL)
    state = v.state
    return v.dead
  })
}

const fail = (at: number, progressAt?: number) => ({ at, ok: false, progressAt })
const ok = (at: number) => ({ at, ok: true })

describe('the liveness decision', () => {
  test(`a backend answering every probe is alive`, () => {
    expect(play([ok(5000), ok(10000), ok(15000), ok(20000)])).toEqual([false, false, false, false])
  })

  test(`${FAILURES_ALLOWED} failed probes in a row, nothing flowing: dead at the ${FAILURES_ALLOWED}rd`, () => {
    expect(FAILURES_ALLOWED).toBe(3)
    expect(play([fail(5000), fail(10000), fail(15000)])).toEqual([false, false, true])
  })

  test('an answered probe in between starts the count again', () => {
    expect(play([fail(5000), fail(10000), ok(15000), fail(20000), fail(25000), fail(30000)])).toEqual([false, false, false, false, false, true])
  })

  test('bytes flowing for a request since the last probe: alive, however the probes fare', () => {
    // A stream receives a byte between every two probes while /health is too slow to answer.
    expect(play([fail(5000, 4000), fail(10000, 9000), fail(15000, 14000), fail(20000, 19000)])).toEqual([false, false, false, false])
  })

  test('a stream that stalls: probes count again from the last byte on', () => {
    // Bytes until 9 s, then nothing (frozen mid-stream): the probes after that are failures.
    const steps = [fail(5000, 4000), fail(10000, 9000), fail(15000, 9000), fail(20000, 9000), fail(25000, 9000)]
    expect(play(steps)).toEqual([false, false, false, false, true])
  })

  test('bytes seen before the run of failures began do not excuse it', () => {
    expect(play([ok(5000), fail(10000, 4000), fail(15000, 4000), fail(20000, 4000)])).toEqual([false, false, false, true])
  })

  test('the reason says what was seen, for the error and the log', () => {
    const v = judgeProbe({ failures: 2, since: 10000 }, false, 15000, 0, INTERVAL)
    expect(v.dead).toBe(true)
    if (v.dead) expect(v.reason).toBe('not answering: 3 health checks in a row failed (none answered within 5 s) while no request of its received any bytes')
  })
})
