/**
 * The request queue under a burst: 64 clients at once against an instance that serves 2 at a
 * time and queues 16. Every request is either served or answered 429 with Retry-After; none
 * hangs (each is bounded), none is lost, and /metrics says the same as the clients saw.
 */
import { afterAll, expect, test } from 'bun:test'
import { tempDir } from '../helpers'
import { type Running, startLlamactl, TEST_KEY } from '../system/process'
import { AUTH_HEADER, metric } from './util'

const CLIENTS = 64
const LIMIT = 2
const QUEUE = 16

let r: Running
afterAll(async () => {
  if (r && r.proc.exitCode === null) await r.stop('SIGTERM')
})

test(`${CLIENTS} clients, ${LIMIT} at a time, a queue of ${QUEUE}: each served or 429, none hangs, metrics add up`, async () => {
  r = await startLlamactl(tempDir(), { env: { LLAMACTL_LOG_REQUESTS: 'false' } })
  const made = await r.api('POST', '/api/v1/instances/q?wait=ready', {
    backend_options: { model: 'x' },
    max_concurrent_requests: LIMIT,
    max_queued_requests: QUEUE,
    queue_timeout: 120,
    environment: { FAKE_TOKEN_DELAY_MS: '20' },
  })
  expect(made.status).toBe(201)

  const one = async () => {
    const res = await fetch(`${r.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'q', stream: true, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
      // A request that hangs fails the test here instead of holding it.
      signal: AbortSignal.timeout(90_000),
    })
    const text = await res.text()
    if (res.status === 429) {
      expect(res.headers.get('retry-after')).toBe('1')
      expect(JSON.parse(text).error).toContain('queue is full')
    } else {
      expect(res.status).toBe(200)
      expect(text).toContain('[DONE]')
    }
    return res.status
  }
  const statuses = await Promise.all(Array.from({ length: CLIENTS }, one))
  const served = statuses.filter((s) => s === 200).length
  const refused = statuses.filter((s) => s === 429).length
  expect(served + refused).toBe(CLIENTS)
  // The first limit + queue to arrive are always served; later ones may be too, as places free.
  expect(served).toBeGreaterThanOrEqual(LIMIT + QUEUE)

  // The metrics of the last requests are written just after their answers end: wait (bounded).
  let m = ''
  for (let i = 0; i < 50; i++) {
    m = await (await fetch(`${r.url}/metrics`, { headers: { authorization: AUTH_HEADER } })).text()
    if (metric(m, 'llamactl_requests_total', { instance: 'q', status: '200' }) === served) break
    await Bun.sleep(100)
  }
  expect(metric(m, 'llamactl_requests_total', { instance: 'q', route: 'chat_completions', status: '200' })).toBe(served)
  expect(metric(m, 'llamactl_queue_refused_total', { instance: 'q', reason: 'full' })).toBe(refused)
  expect(metric(m, 'llamactl_queue_refused_total', { instance: 'q', reason: 'timeout' })).toBe(0)
  expect(metric(m, 'llamactl_queue_length', { instance: 'q' })).toBe(0)
  expect(metric(m, 'llamactl_requests_in_flight', { instance: 'q' })).toBe(0)
  const queuedThenServed = metric(m, 'llamactl_queue_wait_seconds_count', { instance: 'q' })
  expect(queuedThenServed).toBeGreaterThanOrEqual(QUEUE)
  expect(queuedThenServed).toBeLessThanOrEqual(served)
  console.log(`[faults] queue: ${CLIENTS} clients, limit ${LIMIT}, queue ${QUEUE}: ${served} served (${queuedThenServed} after queueing), ${refused} answered 429`)
}, 180_000)
