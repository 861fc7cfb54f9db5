/**
 * The request queue through the API: a client that goes away leaves it at once, a request
 * that waits queue_timeout is answered 429 with Retry-After, and a bad setting is a 400 naming it.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { type Harness, harness, waitFor } from '../helpers'

let h: Harness
afterEach(async () => {
  await h?.close()
})

function chat(base: string, extra: Record<string, unknown> = {}, init: RequestInit = {}) {
  return fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'q', messages: [{ role: 'user', content: 'hi' }], ...extra }),
    ...init,
  })
}

async function slowInstance(options: Record<string, unknown>) {
  h = await harness()
  const res = await h.json('POST', '/api/v1/instances/q?wait=ready', { backend_options: { model: 'x' }, environment: { FAKE_TOKEN_DELAY_MS: '50' }, ...options })
  expect(res.status).toBe(201)
  return h.listen()
}

describe('request queue', () => {
  test('a queued client that goes away leaves the queue at once; the next is served when the slot frees', async () => {
    const base = await slowInstance({ max_concurrent_requests: 1, max_queued_requests: 4 })
    const inst = h.manager.get('q')
    const stream = await chat(base, { stream: true, max_tokens: 10 }) // holds the one slot
    const leaving = new AbortController()
    const gone = chat(base, {}, { signal: leaving.signal }).catch((e: Error) => e)
    await waitFor(() => inst.queued === 1)
    leaving.abort()
    await waitFor(() => inst.queued === 0)
    expect(await gone).toBeInstanceOf(Error)
    const next = chat(base, { max_tokens: 2 })
    await waitFor(() => inst.queued === 1)
    expect(await stream.text()).toContain('[DONE]')
    expect((await next).status).toBe(200)
    expect(inst.queued).toBe(0)
    const m = await h.request('GET', '/metrics')
    expect(await m.text()).toContain('llamactl_queue_refused_total{instance="q",reason="client_gone"} 1')
  })

  test('a request that waits queue_timeout in the queue is answered 429 with Retry-After', async () => {
    const base = await slowInstance({ max_concurrent_requests: 1, queue_timeout: 0.2 })
    const stream = await chat(base, { stream: true, max_tokens: 40 }) // 2 s of tokens: longer than the queue waits
    const res = await chat(base)
    expect(res.status).toBe(429)
    expect(res.headers.get('retry-after')).toBe('1')
    expect((await res.json()).error).toContain('queue_timeout (0.2 s)')
    await stream.body?.cancel()
  })

  test('with no max_concurrent_requests, the limit is the slots the backend reports (/props total_slots); 0 turns it off', async () => {
    const base = await slowInstance({})
    const inst = h.manager.get('q')
    // The fake answers /props as llama-server does: total_slots is its --parallel, 4 by default.
    await waitFor(() => inst.slots === 4)
    const streams = await Promise.all([1, 2, 3, 4].map(() => chat(base, { stream: true, max_tokens: 10 })))
    const third = chat(base, { max_tokens: 2 })
    await waitFor(() => inst.queued === 1)
    for (const s of streams) expect(await s.text()).toContain('[DONE]')
    expect((await third).status).toBe(200)
    // Learned per process: a stopped instance has no slots until its backend says again.
    await h.manager.stop('q')
    expect(inst.slots).toBeNull()
    // An explicit 0 is no limit, whatever the backend says.
    await h.json('PUT', '/api/v1/instances/q?wait=ready', { backend_options: { model: 'x', parallel: 1 }, environment: { FAKE_TOKEN_DELAY_MS: '50' }, max_concurrent_requests: 0 })
    await h.manager.start('q', 'ready')
    await waitFor(() => inst.slots === 1)
    const both = [chat(base, { stream: true, max_tokens: 5 }), chat(base, { stream: true, max_tokens: 5 })]
    await waitFor(() => inst.inflight === 2)
    expect(inst.queued).toBe(0)
    for (const s of await Promise.all(both)) expect(await s.text()).toContain('[DONE]')
  })

  test('a queue setting out of range is a 400 naming it, and nothing is made', async () => {
    h = await harness()
    for (const [key, value] of [['max_concurrent_requests', -1], ['max_queued_requests', 1.5], ['queue_timeout', -3]] as const) {
      const res = await h.json('POST', '/api/v1/instances/bad', { backend_options: { model: 'x' }, [key]: value })
      expect(res.status).toBe(400)
      expect(JSON.stringify(res.body)).toContain(key)
    }
    expect(h.manager.find('bad')).toBeUndefined()
  })

  test('queue_fairness per_key: a second key\'s request is served before the first key\'s batch queued ahead of it', async () => {
    const [A, B] = ['inference-key-a-0123456789', 'inference-key-b-0123456789']
    h = await harness({ LLAMACTL_QUEUE_FAIRNESS: 'per_key', LLAMACTL_REQUIRE_INFERENCE_AUTH: 'true', LLAMACTL_INFERENCE_KEYS: `${A},${B}` })
    const made = await h.json('POST', '/api/v1/instances/q?wait=ready', { backend_options: { model: 'x' }, environment: { FAKE_TOKEN_DELAY_MS: '30' }, max_concurrent_requests: 1 })
    expect(made.status).toBe(201)
    const base = h.listen()
    const inst = h.manager.get('q')
    const order: string[] = []
    // The first holds the one slot long enough (100 tokens) for the rest to queue behind it.
    const send = (key: string, label: string) =>
      chat(base, { stream: true, max_tokens: label === 'a1' ? 100 : 3 }, { headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` } }).then(async (r) => {
        expect(r.status).toBe(200)
        expect(await r.text()).toContain('[DONE]')
        order.push(label)
      })
    const all = [send(A, 'a1')]
    await waitFor(() => inst.inflight === 1)
    for (const [i, n] of [2, 3, 4].entries()) {
      all.push(send(A, `a${n}`))
      await waitFor(() => inst.queued === i + 1)
    }
    all.push(send(B, 'b1'))
    await waitFor(() => inst.queued === 4)
    await Promise.all(all)
    expect(order).toEqual(['a1', 'a2', 'b1', 'a3', 'a4'])
  })
})
