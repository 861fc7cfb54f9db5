import { expect, test } from 'bun:test'
import { backoff } from '../../src/nodes/registry'

test('a node that keeps failing is asked again at a doubling interval, at most 16 intervals and 60 s apart', () => {
  expect([0, 1, 2, 3, 4, 5, 6].map((f) => backoff(5000, f))).toEqual([5000, 10000, 20000, 40000, 60000, 60000, 60000])
  expect([0, 1, 4, 5, 100].map((f) => backoff(200, f))).toEqual([200, 400, 3200, 3200, 3200])
  // An interval past 60 s is never shortened.
  expect(backoff(120_000, 3)).toBe(120_000)
})
